// One worker process for the tests: `node worker-process.mjs <redis url> <name> [lockMs]`. SIGTERM drains.
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseQueueUrl, startWorker } from '../dist/index.js';

// Jobs may read the repository's fixtures and the tests' temporary directories, and write only the latter.
const repository = fileURLToPath(new URL('../../..', import.meta.url));

const [url, name, lock] = process.argv.slice(2);
const worker = await startWorker({
  connection: parseQueueUrl(url),
  name,
  workers: 1,
  lockDuration: Number(lock ?? 4000),
  stalledInterval: 1000,
  roots: { read: [tmpdir(), repository], write: [tmpdir()] },
  log: (line) => process.stderr.write(`[${name}] ${line}\n`),
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => worker.drain().then(() => process.exit(0)));
