// Imported first by the CLI entry: settings that native thread pools read once, at their first use.
import { availableParallelism } from 'node:os';

// sharp's decodes run on libuv's thread pool, which every worker thread of the process shares; its
// default of 4 threads would cap decoding at 4 images in flight however many workers there are.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));

// `featherstack … | head` closes stdout early: end quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
