/**
 * The coordinator: lists the dataset once, splits it into shards, enqueues one BullMQ job per shard
 * (its id derived from the extraction's inputs, so running the coordinator again re-attaches to the
 * same job set instead of doubling it), follows the jobs, retries failed shards, and finishes by
 * checking the complete shard set: every row exactly once, one base model, one schema.
 */
import { createHash } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { FEATURE_COLUMNS, readFeatureSchema, type ShardFile, shardSetProblem } from '@featherstack/common';
import { parseRecordedCut, recordedPooling } from '@featherstack/core';
import { type ColorMode, flowFromDirectory, listDirectory, type PreprocessMode } from '@featherstack/images';
import { tableFromIPC } from 'apache-arrow';
import { Queue } from 'bullmq';
import { checkReachable, type QueueConnection, unprotectedWarning } from './connection.js';
import { modelFileHash, QUEUE_NAME, type ShardJob, type ShardProgress } from './jobs.js';
import { DirectoryStore, shardName } from './store.js';

export interface DistributedExtractOptions {
  connection: QueueConnection;
  /** The base: a .keras, .h5 or tfjs model.json every worker can read at this path (a cut train-base recorded is read from model.json). */
  model: string;
  /** Class folders (flow_from_directory layout) every worker can read at this path. */
  data: string;
  /** The shard directory every worker can write. */
  out: string;
  /** Images per shard (default 1,000). */
  shardSize?: number;
  imageSize: [number, number];
  colorMode: ColorMode;
  /** The rescale the base was trained with (default 1/255; 1 with a preprocess mode). */
  rescale?: number;
  /** Keras's preprocess_input mode for the base ('none', 'tf', 'caffe', 'torch'; default 'none'). */
  preprocess?: PreprocessMode;
  /** The layer whose output is the feature vector (default: the model's, as `extract` picks it). */
  featureLayer?: string;
  /** Global pooling after the feature layer (default 'none'). */
  pooling?: 'avg' | 'max' | 'none';
  /** Default: each worker sizes it from the base's activation memory and its replicas (as `run` and `extract` do). */
  batchSize?: number;
  /**
   * A finished shard found damaged when the set is checked (unreadable, foreign, missing, rows or
   * labels not the listing's) is extracted anew, its file kept beside it as `.damaged`. Default
   * false: the coordinator refuses, naming the shard and this option.
   */
  repair?: boolean;
  /** Tries per shard before it counts as failed (BullMQ attempts; default 3). */
  attempts?: number;
  queueName?: string;
  /** Stops following (the jobs go on; running the coordinator again re-attaches). */
  signal?: AbortSignal;
  onProgress?: (progress: ExtractSetProgress) => void;
  log?: (line: string) => void;
}

export interface ExtractSetProgress {
  shards: number;
  done: number;
  active: number;
  waiting: number;
  failed: number;
  /** Rows of finished shards, and of the active shards so far. */
  rows: number;
  total: number;
  seconds: number;
}

export interface ExtractSetResult {
  set: string;
  out: string;
  shards: number;
  rows: number;
  seconds: number;
  /** Shards already finished when this coordinator attached (a re-attached run). */
  alreadyDone: number;
  /** Shards found damaged and extracted anew (`repair`). */
  repaired: number[];
  /** A pixel cache: the images its workers could not decode, recorded in it by path (none for features). */
  undecodable: { path: string; reason: string }[];
}

/** The cut recorded in a tfjs model.json (parseRecordedCut), read without loading the model. */
async function recordedCutOf(modelJson: string) {
  try {
    return parseRecordedCut((JSON.parse(await readFile(modelJson, 'utf8')) as { userDefinedMetadata?: unknown }).userDefinedMetadata);
  } catch {
    return undefined; // an unreadable model is refused by name when its hash is taken
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Features of a dataset, extracted by the queue's workers into a shard set in `out` (shard-<n>.arrow). */
export function extractDistributed(o: DistributedExtractOptions): Promise<ExtractSetResult> {
  return runShardSet(o, 'features');
}

/**
 * A pixel cache of a dataset, built by the queue's workers as a directory of shards
 * (pixels-<n>.arrow) in `out`; a flow given `cache: out` reads it as one cache.
 */
export function buildPixelCacheDistributed(o: Omit<DistributedExtractOptions, 'model' | 'rescale'>): Promise<ExtractSetResult> {
  return runShardSet({ ...o, model: '' }, 'pixels');
}

/** Shards queued per round trip. */
const ENQUEUE_BATCH = 1000;

/** How every shard job is queued: `attempts` tries a second apart, kept in Redis once finished or failed. */
export function shardJobOptions(attempts = 3) {
  return { attempts, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: false, removeOnFail: false } as const;
}

/**
 * Queues the jobs of `ids` in bulk (one round trip per ENQUEUE_BATCH shards), each under its id.
 * An id already on the queue (a re-attached run) is left as it is: BullMQ ignores the add.
 */
export async function enqueueShards(
  queue: Queue<ShardJob>,
  ids: readonly string[],
  jobs: ReadonlyMap<string, ShardJob>,
  options: ReturnType<typeof shardJobOptions>,
) {
  for (let at = 0; at < ids.length; at += ENQUEUE_BATCH) {
    await queue.addBulk(ids.slice(at, at + ENQUEUE_BATCH).map((id) => ({ name: 'shard', data: jobs.get(id)!, opts: { ...options, jobId: id } })));
  }
}

/** The states BullMQ keeps jobs in, read as whole sets. */
const STATES = ['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'paused'] as const;

/**
 * The state of every shard job of set `set`, in `ids`' order: one range read per state for the
 * whole queue instead of one call per shard (100,000 shards polled in about 0.1 s instead of seconds).
 * A job that moves between lists while they are read can be found in none; those few are asked
 * for one by one, so a job is 'unknown' only when it is really gone.
 */
export async function shardStates(queue: Queue<ShardJob>, ids: string[], set: string): Promise<string[]> {
  const state = new Map<string, string>();
  for (const type of STATES) for (const id of await queue.getRanges([type], 0, -1)) if (id.startsWith(set) && !state.has(id)) state.set(id, type);
  const missing = ids.filter((id) => !state.has(id));
  const confirmed = await Promise.all(missing.map((id) => queue.getJobState(id)));
  for (const [k, id] of missing.entries()) state.set(id, confirmed[k]!);
  return ids.map((id) => state.get(id)!);
}

/** A shard set on the queue as followShards follows it. */
export interface FollowedSet {
  queue: Queue<ShardJob>;
  set: string;
  ids: string[];
  /** Each id's job data, to queue it again. */
  jobs: Map<string, ShardJob>;
  options: ReturnType<typeof shardJobOptions>;
  started: number;
  /** Rows of shard i, and of the set. */
  rows: (i: number) => number;
  total: number;
}

/**
 * Follows the set's jobs until every one has completed: a job gone from Redis (restarted without
 * persistence) is queued again, a failed one (its attempts spent) retried once and then an error;
 * progress is reported per poll.
 */
export async function followShards(f: FollowedSet, o: Pick<DistributedExtractOptions, 'signal' | 'onProgress' | 'log'> & { what?: string }): Promise<void> {
  const { queue, set, ids, jobs, options } = f;
  const log = o.log ?? (() => {});
  const count = ids.length;
  const retried = new Set<string>();
  for (;;) {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('stopped following; the shards go on');
    const states = await shardStates(queue, ids, set);
    // A Redis restarted without persistence has lost the jobs: each lost shard is queued again
    // (its finished file, if any, is simply written once more), instead of waiting forever.
    const lost = ids.filter((_, i) => states[i] === 'unknown');
    if (lost.length > 0) {
      log(`${lost.length} shard job${lost.length > 1 ? 's are' : ' is'} gone from Redis (restarted without persistence?): queued again`);
      await enqueueShards(queue, lost, jobs, options);
      continue;
    }
    const failed = ids.filter((_, i) => states[i] === 'failed');
    for (const id of failed) {
      // A failed shard (its attempts spent) is retried once by the coordinator; then it is an error.
      const job = await queue.getJob(id);
      if (!retried.has(id)) {
        retried.add(id);
        log(`shard ${job?.data.shard.index} failed (${job?.failedReason}); retrying`);
        await job?.retry();
      } else throw new Error(`shard ${job?.data.shard.index} of ${o.what ?? 'extraction'} ${set} failed twice: ${job?.failedReason}`);
    }
    const done = states.filter((s) => s === 'completed').length;
    const active = ids.filter((_, i) => states[i] === 'active');
    let activeRows = 0;
    for (const id of active) activeRows += ((await queue.getJob(id))?.progress as ShardProgress | undefined)?.rows ?? 0;
    const doneRows = ids.reduce((n, _, i) => n + (states[i] === 'completed' ? f.rows(i) : 0), 0);
    o.onProgress?.({
      shards: count,
      done,
      active: active.length,
      waiting: states.filter((s) => s === 'waiting' || s === 'delayed' || s === 'prioritized').length,
      failed: failed.length,
      rows: doneRows + activeRows,
      total: f.total,
      seconds: (performance.now() - f.started) / 1000,
    });
    if (done === count) return;
    // Polled every 250 ms, and less often for large sets (a poll costs about a microsecond a shard).
    await sleep(Math.max(250, Math.min(5000, count / 20)));
  }
}

async function runShardSet(o: DistributedExtractOptions, kind: 'features' | 'pixels'): Promise<ExtractSetResult> {
  const started = performance.now();
  const log = o.log ?? (() => {});
  const shardSize = o.shardSize ?? 1000;
  if (!Number.isSafeInteger(shardSize) || shardSize < 1) throw new Error(`options.shardSize must be a positive integer, received ${shardSize}`);
  await checkReachable(o.connection);
  const warning = unprotectedWarning(o.connection);
  if (warning) log(`warning: ${warning}`);
  const model = kind === 'features' ? resolve(o.model) : '';
  const out = resolve(o.out);
  const listing = await listDirectory(resolve(o.data));
  if (listing.paths.length === 0) throw new Error(`${o.data} holds no images`);
  const sha256 = kind === 'features' ? await modelFileHash(model) : '';
  const preprocess = o.preprocess ?? 'none';
  const image = {
    imageSize: o.imageSize,
    colorMode: o.colorMode,
    rescale: o.rescale ?? (preprocess === 'none' ? 1 / 255 : 1),
    preprocess,
    batchSize: o.batchSize ?? null,
  };
  // Where the base is cut: the options, else what train-base recorded in a tfjs model.json (as
  // `extract` cuts it), else the model's default layer without pooling.
  const recorded = kind === 'features' && extname(model).toLowerCase() === '.json' ? await recordedCutOf(model) : undefined;
  const cut = { featureLayer: o.featureLayer ?? null, pooling: recordedPooling(recorded, o.featureLayer, o.pooling) };
  const count = Math.ceil(listing.paths.length / shardSize);
  // The set's identity: the same model, images, settings and shards give the same job ids.
  const set = createHash('sha256')
    .update(JSON.stringify({ kind, sha256, cut, root: listing.root, paths: listing.paths, image, shardSize, out }))
    .digest('hex')
    .slice(0, 16);
  const queue = new Queue<ShardJob>(o.queueName ?? QUEUE_NAME, { connection: o.connection.options });
  queue.on('error', (error) => log(`queue: ${error.message}`));
  try {
    const ids: string[] = [];
    const jobs = new Map<string, ShardJob>();
    const options = shardJobOptions(o.attempts);
    for (let index = 0; index < count; index++) {
      const start = index * shardSize;
      const end = Math.min(listing.paths.length, start + shardSize);
      const data: ShardJob = {
        kind,
        set,
        model: kind === 'features' ? { path: model, sha256, ...cut } : null,
        image,
        pack: null,
        root: listing.root,
        classNames: listing.classNames,
        paths: listing.paths.slice(start, end),
        labels: Array.from(listing.labels.subarray(start, end)),
        shard: { index, count, start, end },
        output: out,
      };
      const id = `${set}-${index}`;
      ids.push(id);
      jobs.set(id, data);
    }
    await enqueueShards(queue, ids, jobs, options);
    log(`${kind === 'features' ? 'extraction' : 'pixel cache'} ${set}: ${listing.paths.length} images in ${count} shards of up to ${shardSize} → ${out}`);
    const alreadyDone = (await shardStates(queue, ids, set)).filter((s) => s === 'completed').length;
    const repaired: number[] = [];
    // The finished set's files as read once they are all done (features only): checked below.
    let inspection: ShardInspection | undefined;
    const follow = {
      queue,
      set,
      ids,
      jobs,
      options,
      started,
      rows: (i: number) => Math.min(shardSize, listing.paths.length - i * shardSize),
      total: listing.paths.length,
    };
    for (;;) {
      await followShards(follow, o);
      if (kind !== 'features') break;
      inspection = await inspectShards(out, { set, count, paths: listing.paths, labels: listing.labels, shardSize });
      const { damaged } = inspection;
      if (damaged.length === 0) break;
      const more = damaged.length > 1 ? ` (and ${damaged.length - 1} more damaged shard${damaged.length > 2 ? 's' : ''})` : '';
      if (!o.repair || damaged.some((d) => repaired.includes(d.index)))
        throw new Error(
          `${damaged[0]!.reason}${more}; ${o.repair ? 'it was damaged again after its repair' : `run again with --repair (options.repair) to extract ${damaged.length > 1 ? 'them' : 'it'} anew; a damaged file is kept beside it as .damaged`}`,
        );
      for (const d of damaged) {
        await rename(d.path, `${d.path}.damaged`).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        const id = ids[d.index]!;
        await (await queue.getJob(id))?.remove();
        await queue.add('shard', jobs.get(id)!, { ...options, jobId: id });
        repaired.push(d.index);
      }
      log(
        `repairing ${damaged.length} damaged shard${damaged.length > 1 ? 's' : ''} (${damaged.map((d) => d.index).join(', ')}): ${damaged[0]!.reason}${more}`,
      );
    }
    const undecodable = kind === 'features' ? [] : await verifyPixelCache(out, o);
    if (inspection) {
      const problem = setProblem(out, inspection, listing.paths.length);
      if (problem) throw new Error(problem);
    }
    if (undecodable.length > 0)
      o.log?.(
        `${undecodable.length} image${undecodable.length > 1 ? 's' : ''} could not be decoded; the cache records ${undecodable.length > 1 ? 'them' : 'it'} (a flow reading it skips or raises as its onError says). First: ${undecodable[0]!.path}: ${undecodable[0]!.reason}`,
      );
    return { set, out, shards: count, rows: listing.paths.length, seconds: (performance.now() - started) / 1000, alreadyDone, repaired, undecodable };
  } finally {
    await queue.close();
  }
}

/** The pixel shards in `dir` read as one cache by a flow over the dataset (every row, current files, these settings). */
/** Checks that the pixel shards make a cache of the dataset; returns the images it recorded as undecodable. */
async function verifyPixelCache(dir: string, o: DistributedExtractOptions): Promise<{ path: string; reason: string }[]> {
  const flow = await flowFromDirectory(resolve(o.data), { targetSize: o.imageSize, colorMode: o.colorMode, cache: dir, workers: 1, dtype: 'uint8' });
  const cached = flow.cached;
  const failures = flow.cachedFailures;
  await flow.close();
  if (!cached) throw new Error(`the pixel shards in ${dir} do not make a cache of ${o.data}`);
  return failures;
}

/** What a shard set in a directory is checked against: the listing it was made from. */
export interface ShardSetExpectation {
  set: string;
  count: number;
  paths: string[];
  labels: ArrayLike<number>;
  /** Rows per shard the set was made with; without it, each shard starts where the one before ended. */
  shardSize?: number;
}

/**
 * Checks the shard set in `dir` against the listing it was made from: each shard file of the set
 * readable, one base model, and the rows of shard n exactly the listing's rows of shard n, with
 * their labels (a shard written by a forged job with relabelled rows is refused). Foreign or
 * damaged files are refused by name.
 */
export async function verifyShardSet(dir: string, expected: ShardSetExpectation): Promise<void> {
  const problem = setProblem(dir, await inspectShards(dir, expected), expected.paths.length);
  if (problem) throw new Error(problem);
}

/** What is wrong with an inspected set: its first damaged shard, a set-level problem, or a row count not the listing's. */
function setProblem(dir: string, { files, damaged, rows }: ShardInspection, listed: number): string | null {
  if (damaged.length > 0) return damaged[0]!.reason;
  return shardSetProblem(files) ?? (rows !== listed ? `shard set in ${dir} holds ${rows} rows, the listing ${listed}` : null);
}

/** Each shard of the set that is missing or damaged, and why (empty: every shard file is sound). */
export async function damagedShards(dir: string, expected: ShardSetExpectation): Promise<{ index: number; path: string; reason: string }[]> {
  return (await inspectShards(dir, expected)).damaged;
}

/** Each shard file of a set, read and checked: the sound ones, the damaged ones with why, and the sound ones' rows. */
interface ShardInspection {
  files: ShardFile[];
  damaged: { index: number; path: string; reason: string }[];
  rows: number;
}

async function inspectShards(dir: string, expected: ShardSetExpectation): Promise<ShardInspection> {
  const store = new DirectoryStore(dir);
  const names = new Set(await store.list());
  const files: ShardFile[] = [];
  const damaged: { index: number; path: string; reason: string }[] = [];
  let offset = 0;
  for (let index = 0; index < expected.count; index++) {
    const path = join(store.location, shardName(index));
    const start = expected.shardSize !== undefined ? index * expected.shardSize : offset;
    const checked = names.has(shardName(index)) ? await checkShard(path, start, expected) : { reason: `shard set in ${dir} is incomplete: ${path} is missing` };
    if ('reason' in checked) damaged.push({ index, path, reason: checked.reason });
    else {
      files.push(checked);
      offset = start + checked.rows!;
    }
  }
  return { files, damaged, rows: files.reduce((n, f) => n + f.rows!, 0) };
}

/** One shard file against the listing's rows from `start`: the file as shardSetProblem checks it, or why it is damaged. */
async function checkShard(path: string, start: number, expected: ShardSetExpectation): Promise<ShardFile | { reason: string }> {
  let table: ReturnType<typeof tableFromIPC>;
  try {
    table = tableFromIPC(await readFile(path));
  } catch (error) {
    return { reason: `shard ${path} is not a readable feature file (${(error as Error).message})` };
  }
  const schema = readFeatureSchema(table.schema);
  if (typeof schema === 'string') return { reason: `shard ${path} ${schema}` };
  const { shard } = schema;
  if (shard === null) return { reason: `shard ${path} is not a shard of extraction ${expected.set}` };
  if (shard.set !== expected.set) return { reason: `shard ${path} belongs to extraction ${shard.set}, not ${expected.set}` };
  const rows = table.getChild(FEATURE_COLUMNS.path)?.toArray() as string[] | undefined;
  const want = expected.paths.slice(start, start + (shard.end - shard.start));
  if (!rows || shard.start !== start || rows.length !== want.length || rows.some((p, i) => p !== want[i]))
    return { reason: `shard ${path} does not hold rows ${start}–${start + want.length} of the listing` };
  const labels = table.getChild(FEATURE_COLUMNS.label)?.toArray() as ArrayLike<number | bigint> | undefined;
  const wrong = labels ? Array.from(labels).findIndex((l, i) => Number(l) !== expected.labels[start + i]) : 0;
  if (wrong >= 0)
    return {
      reason: `shard ${path}: ${labels ? `row ${start + wrong} (${want[wrong]}) is labelled ${labels[wrong]}, the listing says ${expected.labels[start + wrong]}` : 'has no label column'}; it was not written from this listing`,
    };
  return { path, shard, model: schema.baseModel, rows: rows.length };
}
