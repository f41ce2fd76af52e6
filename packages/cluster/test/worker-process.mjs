// One worker process for the tests: `node worker-process.mjs <redis url> <name> [lockMs]`. SIGTERM drains.
import { parseQueueUrl, startWorker } from '../dist/index.js';

const [url, name, lock] = process.argv.slice(2);
const worker = await startWorker({
  connection: parseQueueUrl(url),
  name,
  workers: 1,
  lockDuration: Number(lock ?? 4000),
  stalledInterval: 1000,
  log: (line) => process.stderr.write(`[${name}] ${line}\n`),
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => worker.drain().then(() => process.exit(0)));
