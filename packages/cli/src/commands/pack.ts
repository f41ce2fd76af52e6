/** `featherstack pack`: a directory of class folders written as a pack of Arrow IPC shards. */
import { packDataset } from '@featherstack/images';
import { RUN_DEFAULTS } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { queueUrl } from './worker.js';

interface PackFlags {
  shardSize: number;
  maxSide?: number;
  quality?: number;
  seed: number;
  overwrite?: boolean;
  queue?: string;
  config?: string;
}

/** The coordinator: one job per shard on the queue's workers, then every shard checked and the index and manifest written. */
async function distributed(data: string, out: string, opts: PackFlags): Promise<void> {
  const { packDistributed, parseQueueUrl } = await import('@featherstack/cluster');
  const connection = parseQueueUrl(await queueUrl(opts));
  const interactive = process.stderr.isTTY;
  let last = '';
  const { dir, manifest, seconds } = await packDistributed({
    connection,
    data,
    out,
    shardBytes: opts.shardSize,
    seed: opts.seed,
    ...(opts.maxSide !== undefined ? { maxSide: opts.maxSide } : {}),
    ...(opts.quality !== undefined ? { quality: opts.quality } : {}),
    ...(opts.overwrite ? { overwrite: true } : {}),
    log: (line) => process.stderr.write(`featherstack: ${line}\n`),
    onProgress: (p) => {
      const line = `shards ${p.done}/${p.shards} packed, ${p.active} active, ${p.waiting} waiting, ${p.failed} failed; ${p.rows}/${p.total} images`;
      if (line === last) return;
      last = line;
      process.stderr.write(interactive ? `\r${line}\u001b[K` : `${line}\n`);
    },
  });
  if (interactive) process.stderr.write('\n');
  summary(dir, manifest, seconds);
}

function summary(dir: string, manifest: Awaited<ReturnType<typeof packDataset>>['manifest'], seconds: number): void {
  process.stdout.write(
    `${dir}: ${manifest.samples} images, ${manifest.classNames.length} classes, ${manifest.shards.length} shards, ` +
      `${(manifest.imageBytes / 2 ** 20).toFixed(1)} MiB of images (${Math.round(manifest.imageBytes / manifest.samples)} bytes each) in ${seconds.toFixed(1)} s\n`,
  );
}

export function register(program: Command): void {
  program
    .command('pack')
    .description(
      'write a directory of class folders as a pack: Arrow IPC shards of the encoded images (the original bytes by default), an index and a manifest; every command reads a pack given as --data (or as its train/ and val/)',
    )
    .argument('<data>', 'images in one subdirectory per class')
    .argument('<out>', 'the pack directory to write')
    .option('--shard-size <bytes>', 'encoded bytes per shard (e.g. 256M)', parse.bytes('--shard-size'), 256 * 2 ** 20)
    .option('--max-side <n>', 're-encode as JPEG with the longer side at most n pixels', parse.int('--max-side'))
    .option('--quality <q>', 'JPEG quality when re-encoding (1–100; default 90)', parse.int('--quality'))
    .option('--seed <n>', 'seed of the stored order', parse.int('--seed'), RUN_DEFAULTS.seed)
    .option('--overwrite', 'replace an existing pack at <out>')
    .option(
      '--queue <url>',
      'pack on the workers of this job queue (redis:// or rediss://; also FEATHERSTACK_QUEUE): one job per shard; <data> and <out> must be paths every worker sees',
    )
    .option('--config <file>', "with --queue's role: a YAML or JSON file with the queue's URL under 'queue'")
    .action(async (data: string, out: string, opts) => {
      if (opts.queue !== undefined || opts.config !== undefined || process.env.FEATHERSTACK_QUEUE) return distributed(data, out, opts);
      const started = performance.now();
      const { dir, manifest } = await packDataset(data, out, {
        shardBytes: opts.shardSize,
        seed: opts.seed,
        ...(opts.maxSide !== undefined ? { maxSide: opts.maxSide } : {}),
        ...(opts.quality !== undefined ? { quality: opts.quality } : {}),
        ...(opts.overwrite ? { overwrite: true } : {}),
        onShard: (s) => process.stderr.write(`featherstack: ${s.file}: ${s.samples} images, ${(s.bytes / 2 ** 20).toFixed(1)} MiB (${s.done}/${s.total})\n`),
      });
      summary(dir, manifest, (performance.now() - started) / 1000);
    });
}
