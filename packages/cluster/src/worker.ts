/**
 * A worker: takes shard jobs from the queue one at a time, extracts their features with the base
 * model (cached by sha256 across jobs) on this machine's replicas and decode pool, and puts
 * `shard-<n>.arrow` in the store atomically. A worker killed mid-shard loses only that shard:
 * BullMQ's stalled-job check hands it to another worker once its lock expires. SIGTERM drains:
 * the current shard finishes, no new one is taken.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pixelBatch, SHARD_METADATA } from '@featherstack/common';
import { defaultFeatureLayer, extractFeatures, extractionBatchFor, featureExtractor, loadBaseModel } from '@featherstack/core';
import { createImagePool, type FileFlowOptions, flowFromListing, type ImagePool } from '@featherstack/images';
import { type LayersModel, loadTensorFlow, planThreads, type Tf } from '@featherstack/tensorflow';
import { type Job, Worker } from 'bullmq';
import { checkReachable, type QueueConnection } from './connection.js';
import { modelFileHash, QUEUE_NAME, type ShardJob, type ShardProgress } from './jobs.js';
import { DirectoryStore, shardName } from './store.js';

export interface WorkerOptions {
  connection: QueueConnection;
  /** Decode workers of this machine (default: every core). */
  workers?: number;
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
  const tf = loadTensorFlow();
  const pool = createImagePool(options.workers !== undefined ? { workers: options.workers } : {});
  const models = new Map<string, { model: LayersModel; layer: string; extractor: LayersModel }>();
  let done = 0;
  const worker = new Worker<ShardJob>(options.queueName ?? QUEUE_NAME, (job) => processShard(tf, pool, models, job, name, log).then(() => void done++), {
    connection: options.connection.options,
    concurrency: 1,
    lockDuration: options.lockDuration ?? 30_000,
    stalledInterval: options.stalledInterval ?? 30_000,
    maxStalledCount: 2,
    name,
  });
  worker.on('error', (error) => log(`queue: ${error.message}`));
  log(`worker ${name} waiting for shards on ${options.connection.display}`);
  return {
    name,
    get done() {
      return done;
    },
    async drain() {
      await worker.close();
      await pool.close();
      for (const m of models.values()) m.model.dispose();
    },
  };
}

/** A pixel-cache shard: one pass of a flow over the shard's rows writes its cache, then it goes to the store. */
async function processPixelShard(pool: ImagePool, job: Job<ShardJob>, name: string, log: (line: string) => void) {
  const d = job.data;
  const local = await mkdtemp(join(tmpdir(), 'featherstack-pixels-'));
  const file = join(local, shardName(d.shard.index, 'pixels'));
  // Images that cannot be decoded are recorded in the cache (and replayed by the flows reading it).
  // Pixels only pass through: pixelBatch's size, unless the job names one.
  const batchSize = d.image.batchSize ?? pixelBatch(d.image.imageSize, d.image.colorMode);
  const flow = await shardFlow(pool, d, batchSize, { dtype: 'uint8', onError: 'skip', cache: file });
  try {
    let rows = 0;
    for await (const batch of flow.epoch(0)) {
      rows += batch.size;
      void job.updateProgress({ worker: name, rows, total: d.paths.length } satisfies ShardProgress);
    }
    await new DirectoryStore(d.output).put(file, shardName(d.shard.index, 'pixels'));
    log(`pixel shard ${d.shard.index + 1}/${d.shard.count}: ${d.paths.length} images`);
    return d.paths.length;
  } finally {
    await flow.close();
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
    targetSize: d.image.imageSize,
    colorMode: d.image.colorMode,
    batchSize,
    shuffle: false,
    ...options,
  });
}

async function processShard(
  tf: Tf,
  pool: ImagePool,
  models: Map<string, { model: LayersModel; layer: string; extractor: LayersModel }>,
  job: Job<ShardJob>,
  name: string,
  log: (line: string) => void,
) {
  const d = job.data;
  if (d.kind === 'pixels') return processPixelShard(pool, job, name, log);
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
  const batchSize = d.image.batchSize ?? extractionBatchFor(loaded.extractor, { replicas: planThreads({}).replicas });
  const flow = await shardFlow(pool, d, batchSize, { augment: { rescale: d.image.rescale, preprocess: d.image.preprocess } });
  // Extracted to this machine's disk (its journal stays private), then put in the store atomically.
  const local = await mkdtemp(join(tmpdir(), 'featherstack-shard-'));
  try {
    const file = join(local, shardName(d.shard.index));
    const result = await extractFeatures(tf, loaded.extractor, flow, file, {
      metadata: { [SHARD_METADATA]: JSON.stringify({ set: d.set, ...d.shard }) },
      featureLayer: loaded.layer,
      pooling: base.pooling,
      onBatch: (p) => void job.updateProgress({ worker: name, rows: p.rows, total: p.total } satisfies ShardProgress),
    });
    await new DirectoryStore(d.output).put(file, shardName(d.shard.index));
    log(`shard ${d.shard.index + 1}/${d.shard.count}: ${result.rows} rows in ${result.seconds.toFixed(1)} s`);
    return result.rows;
  } finally {
    await flow.close();
    await rm(local, { recursive: true, force: true });
  }
}
