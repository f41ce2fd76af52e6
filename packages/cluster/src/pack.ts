/**
 * Packing on the job queue: the coordinator lists the dataset once, fixes the pack's stored order
 * (the seed's, as packDataset) and cuts it into shards of about `shardBytes` of source files; each
 * shard is one job, which any worker packs and puts in the pack directory. Once every shard is in,
 * the coordinator reads each one back (its rows must be exactly the ones planned, every image's
 * CRC-32 sound) and writes the index and then pack.json. A pack made so reads exactly like one
 * packDataset writes.
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { epochOrder } from '@featherstack/common';
import {
  finishPack,
  inspectPackShard,
  listDirectory,
  type PackManifest,
  type PackRow,
  packLayout,
  packShardFileName,
  preparePackDir,
} from '@featherstack/images';
import { Queue } from 'bullmq';
import { MAX_SHARD_ROWS } from './admit.js';
import { checkReachable, type QueueConnection, unprotectedWarning } from './connection.js';
import { enqueueShards, type ExtractSetProgress, followShards, shardJobOptions, shardStates } from './coordinator.js';
import { QUEUE_NAME, type ShardJob } from './jobs.js';

export interface DistributedPackOptions {
  connection: QueueConnection;
  /** Class folders every worker can read at this path. */
  data: string;
  /** The pack directory every worker can write. */
  out: string;
  /** Source bytes per shard (default 256 MiB; re-encoded shards come out smaller). */
  shardBytes?: number;
  /** Re-encode as JPEG with the longer side at most this many pixels (as packDataset). */
  maxSide?: number;
  /** JPEG quality when re-encoding (default 90). */
  quality?: number;
  /** Seed of the stored order (default 0). */
  seed?: number;
  /** Replace an earlier pack at `out`. */
  overwrite?: boolean;
  /** Tries per shard before it counts as failed (default 3). */
  attempts?: number;
  queueName?: string;
  signal?: AbortSignal;
  onProgress?: (progress: ExtractSetProgress) => void;
  log?: (line: string) => void;
}

export interface DistributedPackResult {
  dir: string;
  manifest: PackManifest;
  set: string;
  seconds: number;
  /** Shards already in when this coordinator attached (a re-attached run). */
  alreadyDone: number;
}

/** The file in a pack directory naming the queue set being packed into it (a re-run re-attaches). */
const SET_MARKER = '.featherstack-pack-set';

/** Sizes of `files`, stat'ed `concurrency` at a time. */
async function sizes(files: string[], concurrency = 64): Promise<Float64Array> {
  const out = new Float64Array(files.length);
  let next = 0;
  const work = async () => {
    for (let i = next++; i < files.length; i = next++) out[i] = (await stat(files[i]!)).size;
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, work));
  return out;
}

/**
 * A pack of the dataset at `o.data`, written into `o.out` by the queue's workers.
 *
 * @example
 * await packDistributed({ connection: parseQueueUrl('redis://queue:6379'), data: '/shared/train', out: '/shared/packs/train' });
 */
export async function packDistributed(o: DistributedPackOptions): Promise<DistributedPackResult> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const { shardBytes, seed, encoding } = packLayout(o);
  await checkReachable(o.connection);
  const warning = unprotectedWarning(o.connection);
  if (warning) log(`warning: ${warning}`);
  const listing = await listDirectory(resolve(o.data));
  if (listing.paths.length === 0) throw new Error(`${o.data} holds no images`);
  const dir = resolve(o.out);

  // The stored order and its cut into shards by the source files' sizes.
  const order = epochOrder(listing.paths.length, seed, 0, true);
  const size = await sizes(Array.from(order, (i) => join(listing.root, listing.paths[i]!)));
  const bounds: [number, number][] = [];
  for (let start = 0, at = 0, bytes = 0; at <= order.length; at++) {
    // A job carries at most MAX_SHARD_ROWS rows (a worker refuses more), however small the files.
    if (at === order.length || (at > start && (bytes + size[at]! > shardBytes || at - start >= MAX_SHARD_ROWS))) {
      if (at > start) bounds.push([start, at]);
      start = at;
      bytes = 0;
    }
    if (at < order.length) bytes += size[at]!;
  }
  const set = createHash('sha256')
    .update(JSON.stringify({ kind: 'pack', root: listing.root, paths: listing.paths, encoding, seed, shardBytes, dir }))
    .digest('hex')
    .slice(0, 16);
  // A directory this set was already packing into is re-attached; anything else is prepared as packDataset prepares it.
  const marker = join(dir, SET_MARKER);
  if ((await readFile(marker, 'utf8').catch(() => '')) !== set) {
    await preparePackDir(dir, o.overwrite ?? false);
    await writeFile(marker, set);
  }

  // Each shard's rows, as planned: its job carries them, and its file is checked against them.
  const plans = bounds.map(([start, end]): PackRow[] =>
    Array.from(order.subarray(start, end), (i) => ({ index: i, path: listing.paths[i]!, label: listing.labels[i]! })),
  );
  const ids: string[] = [];
  const jobs = new Map<string, ShardJob>();
  for (const [index, [start, end]] of bounds.entries()) {
    const planned = plans[index]!;
    const id = `${set}-${index}`;
    ids.push(id);
    jobs.set(id, {
      kind: 'pack',
      set,
      model: null,
      image: null,
      pack: { encoding, indices: planned.map((r) => r.index) },
      root: listing.root,
      classNames: listing.classNames,
      paths: planned.map((r) => r.path),
      labels: planned.map((r) => r.label),
      shard: { index, count: bounds.length, start, end },
      output: dir,
    });
  }
  const queue = new Queue<ShardJob>(o.queueName ?? QUEUE_NAME, { connection: o.connection.options });
  queue.on('error', (error) => log(`queue: ${error.message}`));
  try {
    const options = shardJobOptions(o.attempts);
    await enqueueShards(queue, ids, jobs, options);
    log(`pack ${set}: ${listing.paths.length} images in ${bounds.length} shards of about ${(shardBytes / 2 ** 20).toFixed(0)} MiB → ${dir}`);
    const alreadyDone = (await shardStates(queue, ids, set)).filter((s) => s === 'completed').length;
    const rowsOf = (i: number) => plans[i]!.length;
    await followShards({ queue, set, ids, jobs, options, started, rows: rowsOf, total: listing.paths.length }, { ...o, what: 'pack' });

    // Every shard read back: exactly the planned rows, in order, each image's bytes sound.
    const shards: { info: { file: string; samples: number; bytes: number; sha256: string }; rows: PackRow[] }[] = [];
    let imageBytes = 0;
    for (let k = 0; k < bounds.length; k++) {
      const file = packShardFileName(k);
      const found = await inspectPackShard(join(dir, file));
      const planned = plans[k]!;
      const wrong = planned.findIndex((r, i) => found.rows[i]?.index !== r.index || found.rows[i]?.path !== r.path || found.rows[i]?.label !== r.label);
      if (found.rows.length !== planned.length || wrong >= 0)
        throw new Error(
          `pack shard ${join(dir, file)} does not hold the rows planned for it (${found.rows.length} rows, ${planned.length} planned; first difference at row ${wrong < 0 ? planned.length : wrong}); it was not written by this pack's job`,
        );
      shards.push({ info: { file, samples: planned.length, bytes: found.bytes, sha256: found.sha256 }, rows: planned });
      imageBytes += found.imageBytes;
    }
    const manifest = await finishPack(dir, listing, encoding, seed, shards, imageBytes);
    return { dir, manifest, set, seconds: (performance.now() - started) / 1000, alreadyDone };
  } finally {
    await queue.close();
  }
}
