// Imported first by the CLI entry. (libuv's thread pool is sized by @featherstack/images, which
// every command imports before any I/O starts the pool.)

// `featherstack … | head` closes stdout early: end quietly instead of crashing on EPIPE.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
