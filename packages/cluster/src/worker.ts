/**
 * A worker: takes shard jobs from the queue one at a time, extracts their features with the base
 * model (cached by sha256 across jobs) on this machine's replicas and decode pool, and puts
 * `shard-<n>.arrow` in the store atomically. A worker killed mid-shard loses only that shard:
 * BullMQ's stalled-job check hands it to another worker once its lock expires. SIGTERM drains:
 * the current shard finishes, no new one is taken.
 *
 * A job is data from Redis: admitJob checks every field against this worker's roots before any
 * file is read or written (see admit.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pixelBatch, SHARD_METADATA } from '@featherstack/common';
import { defaultFeatureLayer, extractFeatures, extractionBatchFor, extractionWorkers, featureExtractor, loadBaseModel } from '@featherstack/core';
import { createImagePool, type FileFlowOptions, flowFromListing, type ImagePool, packShard, packShardFileName } from '@featherstack/images';
import { type LayersModel, loadTensorFlow, planExtraction, type Tf } from '@featherstack/tensorflow';
import { type Job, Worker } from 'bullmq';
import { admitJob, resolveRoots, type WorkerRoots } from './admit.js';
import { checkReachable, type QueueConnection, unprotectedWarning } from './connection.js';
import { modelFileHash, QUEUE_NAME, type ShardJob, type ShardProgress } from './jobs.js';
import { DirectoryStore, shardName } from './store.js';

export interface WorkerOptions {
  connection: QueueConnection;
  /**
   * Decode workers of this machine (default: for feature shards, planned from the base model's
   * cost per image against decoding, as `run` and `extract` do; for pixel shards every core).
   */
  workers?: number;
  /**
   * Where jobs may make this worker read images and models (`read`) and write shard directories
   * (`write`); anything outside is refused. Default: the current directory for both.
   */
  roots?: Partial<WorkerRoots>;
  /** How long a job's lock lasts without renewal before another worker may take it over (ms). */
  lockDuration?: number;
  /** How often to look for stalled jobs (ms). */
  stalledInterval?: number;
  queueName?: string;
  /** This worker's name in `queue status` (default host:pid). */
  name?: string;
  log?: (line: string) => void;
}

export interface RunningWorker {
  readonly name: string;
  /** Shards this worker completed. */
  readonly done: number;
  /** Stops taking jobs, lets the current shard finish, then closes. */
  drain(): Promise<void>;
}

/** Starts a worker; it runs until drain() (the CLI calls it on SIGTERM and SIGINT). */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  await checkReachable(options.connection);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const roots = await resolveRoots({ read: options.roots?.read ?? [process.cwd()], write: options.roots?.write ?? [process.cwd()] });
  const warning = unprotectedWarning(options.connection);
  if (warning) log(`warning: ${warning}`);
  const tf = loadTensorFlow();
  const pools = new Pools(options.workers);
  const models = new Map<string, LoadedModel>();
  let done = 0;
  const handle = async (job: Job<ShardJob>) => {
    const data = await admitJob(job.data, roots);
    await processShard(tf, pools, models, job, data, name, log);
    done++;
  };
  const worker = new Worker<ShardJob>(options.queueName ?? QUEUE_NAME, handle, {
    connection: options.connection.options,
    concurrency: 1,
    lockDuration: options.lockDuration ?? 30_000,
    stalledInterval: options.stalledInterval ?? 30_000,
    maxStalledCount: 2,
    name,
  });
  worker.on('error', (error) => log(`queue: ${error.message}`));
  log(`worker ${name} waiting for shards on ${options.connection.display}; reads under ${roots.read.join(', ')}, writes under ${roots.write.join(', ')}`);
  return {
    name,
    get done() {
      return done;
    },
    async drain() {
      await worker.close();
      await pools.close();
      for (const m of models.values()) m.model.dispose();
    },
  };
}

interface LoadedModel {
  model: LayersModel;
  layer: string;
  extractor: LayersModel;
}

/**
 * The decode pool, sized for the job at hand: a light base needs more decode workers per
 * TensorFlow thread than a heavy one (extractionWorkers), a pixel shard only decodes. Kept while
 * consecutive jobs want the same size.
 */
class Pools {
  private current: { workers: number; pool: ImagePool } | null = null;

  constructor(private readonly fixed: number | undefined) {}

  async get(model: LayersModel | null): Promise<ImagePool> {
    const cores = availableParallelism();
    const workers = this.fixed ?? (model ? extractionWorkers(model, cores) : cores);
    if (this.current?.workers === workers) return this.current.pool;
    await this.close();
    this.current = { workers, pool: createImagePool({ workers }) };
    return this.current.pool;
  }

  async close(): Promise<void> {
    const pool = this.current?.pool;
    this.current = null;
    await pool?.close();
  }
}

/** A progress report; one Redis no longer holding the job (restarted without persistence) must not crash the worker. */
function report(job: Job<ShardJob>, progress: ShardProgress): void {
  job.updateProgress(progress).catch(() => {});
}

/** A pixel-cache shard: one pass of a flow over the shard's rows writes its cache, then it goes to the store. */
async function processPixelShard(pool: ImagePool, job: Job<ShardJob>, d: ShardJob, name: string, log: (line: string) => void) {
  const local = await mkdtemp(join(tmpdir(), 'featherstack-pixels-'));
  const file = join(local, shardName(d.shard.index, 'pixels'));
  // Images that cannot be decoded are recorded in the cache (and replayed by the flows reading it).
  // Pixels only pass through: pixelBatch's size, unless the job names one.
  const image = d.image!;
  const batchSize = image.batchSize ?? pixelBatch(image.imageSize, image.colorMode);
  const flow = await shardFlow(pool, d, batchSize, { dtype: 'uint8', onError: 'skip', cache: file });
  try {
    let rows = 0;
    for await (const batch of flow.epoch(0)) {
      rows += batch.size;
      report(job, { worker: name, rows, total: d.paths.length });
    }
    await new DirectoryStore(d.output).put(file, shardName(d.shard.index, 'pixels'));
    log(`pixel shard ${d.shard.index + 1}/${d.shard.count}: ${d.paths.length} images`);
    return d.paths.length;
  } finally {
    await flow.close();
    await rm(local, { recursive: true, force: true });
  }
}

/**
 * A pack shard: the job's rows (in the pack's stored order) read, re-encoded where the job says,
 * written here as one shard file, then put in the pack directory; the coordinator checks every
 * shard and writes the index and manifest once all are in.
 */
async function processPackShard(job: Job<ShardJob>, d: ShardJob, name: string, log: (line: string) => void) {
  const { encoding, indices } = d.pack!;
  const local = await mkdtemp(join(tmpdir(), 'featherstack-pack-'));
  const file = packShardFileName(d.shard.index);
  try {
    const rows = d.paths.map((path, i) => ({ index: indices[i]!, path, label: d.labels[i]! }));
    const info = await packShard(d.root, rows, encoding, join(local, file));
    await new DirectoryStore(d.output).put(join(local, file), file);
    report(job, { worker: name, rows: d.paths.length, total: d.paths.length });
    log(`pack shard ${d.shard.index + 1}/${d.shard.count}: ${info.samples} images, ${(info.bytes / 2 ** 20).toFixed(1)} MiB`);
    return info.samples;
  } finally {
    await rm(local, { recursive: true, force: true });
  }
}

/** A flow over the shard's rows of the listing, in order, with the job's image settings. */
function shardFlow(pool: ImagePool, d: ShardJob, batchSize: number, options: FileFlowOptions) {
  const listing = {
    root: d.root,
    classNames: d.classNames,
    classIndices: Object.fromEntries(d.classNames.map((c, i) => [c, i])),
    paths: d.paths,
    labels: Int32Array.from(d.labels),
  };
  return flowFromListing(listing, {
    pool,
    targetSize: d.image!.imageSize,
    colorMode: d.image!.colorMode,
    batchSize,
    shuffle: false,
    ...options,
  });
}

async function processShard(
  tf: Tf,
  pools: Pools,
  models: Map<string, LoadedModel>,
  job: Job<ShardJob>,
  d: ShardJob,
  name: string,
  log: (line: string) => void,
) {
  if (d.kind === 'pixels') return processPixelShard(await pools.get(null), job, d, name, log);
  if (d.kind === 'pack') return processPackShard(job, d, name, log);
  const base = d.model;
  if (!base) throw new Error(`feature shard ${d.shard.index} of ${d.set} names no base model`);
  // The model every worker loads must be the one the coordinator named: a shared directory that
  // differs between machines would otherwise mix two models in one set.
  // Keyed by model and cut: one loaded model can serve sets cut at different layers.
  const key = `${base.sha256}/${base.featureLayer ?? ''}/${base.pooling}`;
  let loaded = models.get(key);
  if (!loaded) {
    const sha = await modelFileHash(base.path);
    if (sha !== base.sha256) throw new Error(`base model ${base.path} on ${name} has sha256 ${sha.slice(0, 12)}…, the job names ${base.sha256.slice(0, 12)}…`);
    const model = await loadBaseModel(tf, base.path, base.featureLayer ?? undefined);
    const layer = base.featureLayer ?? defaultFeatureLayer(model).layer;
    loaded = { model, layer, extractor: featureExtractor(tf, model, layer, base.pooling) };
    models.set(key, loaded);
  }
  const image = d.image!;
  const batchSize = image.batchSize ?? extractionBatchFor(loaded.extractor, { replicas: planExtraction({}).replicas });
  const flow = await shardFlow(await pools.get(loaded.extractor), d, batchSize, { augment: { rescale: image.rescale, preprocess: image.preprocess } });
  // Extracted to this machine's disk (its journal stays private), then put in the store atomically.
  const local = await mkdtemp(join(tmpdir(), 'featherstack-shard-'));
  try {
    const file = join(local, shardName(d.shard.index));
    const result = await extractFeatures(tf, loaded.extractor, flow, file, {
      metadata: { [SHARD_METADATA]: JSON.stringify({ set: d.set, ...d.shard }) },
      featureLayer: loaded.layer,
      pooling: base.pooling,
      onBatch: (p) => report(job, { worker: name, rows: p.rows, total: p.total }),
    });
    await new DirectoryStore(d.output).put(file, shardName(d.shard.index));
    log(`shard ${d.shard.index + 1}/${d.shard.count}: ${result.rows} rows in ${result.seconds.toFixed(1)} s`);
    return result.rows;
  } finally {
    await flow.close();
    await rm(local, { recursive: true, force: true });
  }
}
