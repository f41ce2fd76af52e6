/** `featherstack worker` and `featherstack queue status`: the job queue's workers, and what they do. */
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { printResult } from '../render/output.js';
import { runFlag } from '../run-flags.js';

/** The queue URL: --queue, else --config's `queue`, else FEATHERSTACK_QUEUE (parseQueueUrl's fallback). */
export async function queueUrl(opts: { queue?: string; config?: string }): Promise<string | undefined> {
  if (opts.queue !== undefined || opts.config === undefined) return opts.queue;
  const { queueUrlFromConfig } = await import('@featherstack/cluster');
  return queueUrlFromConfig(opts.config);
}

const collect = (value: string, previous: string[]) => [...previous, value];

const CONFIG_HELP = "a YAML or JSON file with the queue's URL under 'queue' (used when --queue is not given)";

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'take shards from the job queue (feature extraction, pixel caches, packs; run it on any number of machines); SIGTERM finishes the current shard, then exits',
    )
    .option('--queue <url>', 'the job queue (redis:// or rediss://, with :password@ if needed; also FEATHERSTACK_QUEUE)')
    .option('--config <file>', CONFIG_HELP)
    .option('--workers <n>', 'image decode workers (default: all cores)', parse.int('--workers'))
    .option('--name <name>', 'this worker in `queue status` (default host:pid)')
    .option(
      '--lock-duration <ms>',
      "how long a shard stays this worker's without renewal before another may take it (default 30000)",
      parse.int('--lock-duration'),
    )
    .option('--stalled-interval <ms>', 'how often to look for shards of dead workers (default 30000)', parse.int('--stalled-interval'))
    .option(
      '--root <dir>',
      'a directory jobs may make this worker read images and models under (repeat for several; default the current directory); anything else is refused',
      collect,
      [] as string[],
    )
    .option(
      '--output-root <dir>',
      'a directory jobs may make this worker write shards under (repeat for several; default the current directory)',
      collect,
      [] as string[],
    )
    .action(async (opts) => {
      const { parseQueueUrl, startWorker } = await import('@featherstack/cluster');
      const worker = await startWorker({
        connection: parseQueueUrl(await queueUrl(opts)),
        ...(opts.workers ? { workers: opts.workers } : {}),
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.lockDuration ? { lockDuration: opts.lockDuration } : {}),
        ...(opts.stalledInterval ? { stalledInterval: opts.stalledInterval } : {}),
        roots: { ...(opts.root.length ? { read: opts.root } : {}), ...(opts.outputRoot.length ? { write: opts.outputRoot } : {}) },
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

  const cache = program
    .command('cache')
    .description(
      "build a pixel cache of class folders on the job queue's workers: a directory of pixels-<n>.arrow shards that a flow (cache: DIR) reads as one",
    )
    .requiredOption('--data <dir>', 'images, one subdirectory per class (the same path on every worker)')
    .requiredOption('--out <dir>', 'the shard directory every worker can write')
    .option('--queue <url>', 'the job queue (also FEATHERSTACK_QUEUE)')
    .option('--config <file>', CONFIG_HELP);
  for (const key of ['imageSize', 'colorMode'] as const) runFlag(cache, key);
  cache
    .option('--shard-size <n>', 'images per shard', parse.int('--shard-size'), 1000)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { buildPixelCacheDistributed, parseQueueUrl } = await import('@featherstack/cluster');
      const result = await buildPixelCacheDistributed({
        connection: parseQueueUrl(await queueUrl(opts)),
        data: opts.data,
        out: opts.out,
        imageSize: opts.imageSize,
        colorMode: opts.colorMode,
        shardSize: opts.shardSize,
        log: opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
      });
      printResult(opts.json)(result);
    });

  program
    .command('queue')
    .description('the job queue')
    .command('status')
    .description('jobs waiting, active, failed and done, and which worker holds which shard')
    .option('--queue <url>', 'the job queue (also FEATHERSTACK_QUEUE)')
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const { parseQueueUrl, queueStatus } = await import('@featherstack/cluster');
      const status = await queueStatus(parseQueueUrl(await queueUrl(opts)));
      if (opts.json) {
        printResult(true)(status);
        return;
      }
      const c = status.counts;
      process.stdout.write(`${status.queue}: ${c.waiting} waiting, ${c.active} active, ${c.delayed} delayed, ${c.failed} failed, ${c.completed} done\n`);
      const n = (k: number) => (k < 0 ? '?' : String(k + 1));
      for (const a of status.active)
        process.stdout.write(`  shard ${n(a.shard)}/${a.of < 0 ? '?' : a.of} of ${a.set}: ${a.worker ?? '(starting)'} at ${a.rows}/${a.total}\n`);
      for (const f of status.failed) process.stdout.write(`  failed: shard ${n(f.shard)} of ${f.set} after ${f.attempts} attempts: ${f.reason}\n`);
    });
}
