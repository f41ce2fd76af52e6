/** `featherstack worker` and `featherstack queue status`: the job queue's workers, and what they do. */
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { printResult } from '../render/output.js';

export function register(program: Command): void {
  program
    .command('worker')
    .description('take feature-extraction shards from the job queue (run it on any number of machines); SIGTERM finishes the current shard, then exits')
    .option('--queue <url>', 'the job queue (redis:// or rediss://, with :password@ if needed; also FEATHERSTACK_QUEUE)')
    .option('--workers <n>', 'image decode workers (default: all cores)', parse.int('--workers'))
    .option('--name <name>', 'this worker in `queue status` (default host:pid)')
    .option(
      '--lock-duration <ms>',
      "how long a shard stays this worker's without renewal before another may take it (default 30000)",
      parse.int('--lock-duration'),
    )
    .option('--stalled-interval <ms>', 'how often to look for shards of dead workers (default 30000)', parse.int('--stalled-interval'))
    .action(async (opts) => {
      const { parseQueueUrl, startWorker } = await import('@featherstack/cluster');
      const worker = await startWorker({
        connection: parseQueueUrl(opts.queue),
        ...(opts.workers ? { workers: opts.workers } : {}),
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.lockDuration ? { lockDuration: opts.lockDuration } : {}),
        ...(opts.stalledInterval ? { stalledInterval: opts.stalledInterval } : {}),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.stderr.write(`${signal}: finishing the current shard, taking no new one\n`);
          worker
            .drain()
            .then(() => {
              process.stderr.write(`worker ${worker.name} stopped after ${worker.done} shards\n`);
              resolve();
            })
            .catch((error: Error) => {
              process.stderr.write(`featherstack: ${error.message}\n`);
              process.exit(1);
            });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      process.exit(0);
    });

  program
    .command('queue')
    .description('the job queue')
    .command('status')
    .description('jobs waiting, active, failed and done, and which worker holds which shard')
    .option('--queue <url>', 'the job queue (also FEATHERSTACK_QUEUE)')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { parseQueueUrl, queueStatus } = await import('@featherstack/cluster');
      const status = await queueStatus(parseQueueUrl(opts.queue));
      if (opts.json) {
        printResult(true)(status);
        return;
      }
      const c = status.counts;
      process.stdout.write(`${status.queue}: ${c.waiting} waiting, ${c.active} active, ${c.delayed} delayed, ${c.failed} failed, ${c.completed} done\n`);
      for (const a of status.active) process.stdout.write(`  shard ${a.shard + 1}/${a.of} of ${a.set}: ${a.worker ?? '(starting)'} at ${a.rows}/${a.total}\n`);
      for (const f of status.failed) process.stdout.write(`  failed: shard ${f.shard + 1} of ${f.set} after ${f.attempts} attempts: ${f.reason}\n`);
    });
}
