/**
 * Feature extraction: runs the trained base up to its feature layer over a flow and streams one
 * Arrow RecordBatch per image batch into an Arrow IPC file. Memory stays constant whatever the
 * dataset size; the file is written under a temporary name and renamed when complete, so a reader
 * never sees a half-written file under the final name.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  ArrowFileWriter,
  Covariance,
  FEATURE_FORMAT,
  FEATURE_LAYER,
  FEATURE_METADATA as META,
  featureRecordBatch,
  featureSchema,
  symmetricEigen,
} from '@featherstack/common';
import type { ImageFlow } from '@featherstack/images';
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import { type RecordBatch, RecordBatchReader, Schema } from 'apache-arrow';
import { type EngineOptions, openReplicas } from './engines.js';
import type { Pooling } from './cut.js';
import { invalidOption } from './errors.js';

export interface ExtractOptions extends Omit<EngineOptions, 'seed'> {
  /** Layer whose output is the feature vector, recorded in the file. Default 'features'. */
  featureLayer?: string;
  /** The global pooling featureExtractor applied after it, recorded in the file. Default 'none'. */
  pooling?: Pooling;
  /** Extra schema metadata (string values). */
  metadata?: Record<string, string>;
  /** PCA projection and/or L2 normalisation applied to each row before it is written. */
  transform?: FeatureTransform;
  /** Continue an extraction that stopped: keep the batches journalled so far and extract the rest. */
  resume?: boolean;
  signal?: AbortSignal;
  /** Called after each batch is written (for progress bars): rows done of `total`, including resumed ones. */
  onBatch?: (progress: ExtractProgress) => void;
}

export interface ExtractProgress {
  /** Batches done (resumed ones included) of `batches`. */
  batch: number;
  batches: number;
  rows: number;
  total: number;
  /** Seconds since this call started, and the rows extracted in them (resumed rows excluded). */
  seconds: number;
  extractedRows: number;
}

export interface ExtractResult {
  path: string;
  /** The feature layer and pooling recorded in the file. */
  featureLayer: string;
  pooling: Pooling;
  rows: number;
  dimension: number;
  seconds: number;
  /** Batches taken over from an interrupted run's journal. */
  resumedBatches: number;
  /** The engine that extracted: the compiled graph on `replicas` replicas, or tfjs's eager predict. */
  engine: 'graph' | 'eager';
  replicas: number;
  /** Why the graph engine did not run (the layer that sent the model to eager, named). */
  fallback?: string;
  /**
   * Why an interrupted run's journal was not resumed (it was written by another base model, for
   * other images or settings, or with another batch size); absent when it was, or when none was found.
   */
  discardedJournal?: string;
}

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** Identity of a model: sha256 over its weights' shapes and values (architecture changes show in the shapes). */
export function modelHash(model: LayersModel): string {
  const hash = createHash('sha256');
  for (const w of model.getWeights()) {
    hash.update(JSON.stringify(w.shape));
    const values = w.dataSync() as Float32Array;
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

/** What one extraction takes beyond the engine (the engine is chosen when the base is opened). */
export type ExtractRunOptions = Omit<ExtractOptions, keyof EngineOptions>;

/**
 * A base opened for extraction: one compiled session (or tfjs's eager predict) that extracts any
 * number of flows. The session is compiled on the first extract(), after that flow has started
 * decoding, and kept: TensorFlow optimises a graph and touches its activation memory on a
 * session's first run, once (MobileNetV2 at 224²: about a second on 2 cores), not once per split.
 */
export interface FeatureExtraction {
  extract(flow: ImageFlow, path: string, options?: ExtractRunOptions): Promise<ExtractResult>;
  /** Frees the session; the extractor model stays the caller's. */
  close(): Promise<void>;
}

/**
 * Opens `extractor` for extraction with the engine `options` name.
 *
 * @example
 * const extraction = openExtraction(tf, featureExtractor(tf, base), { precision: 'float32' });
 * try {
 *   await extraction.extract(trainFlow, 'features/train.arrow');
 *   await extraction.extract(valFlow, 'features/val.arrow');
 * } finally {
 *   await extraction.close();
 * }
 */
export function openExtraction(tf: Tf, extractor: LayersModel, options: Omit<EngineOptions, 'seed'> = {}): FeatureExtraction {
  const engine: Omit<EngineOptions, 'seed'> = {
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.threadsPerReplica !== undefined ? { threadsPerReplica: options.threadsPerReplica } : {}),
    // Unless told otherwise, extraction's layout: a replica of one thread per core (planExtraction).
    ...(options.replicas === undefined && options.threadsPerReplica === undefined ? { threadsPerReplica: 1 } : {}),
    ...(options.precision !== undefined ? { precision: options.precision } : {}),
  };
  let opened: ReturnType<typeof openReplicas> | null = null;
  let hash: string | null = null;
  let closed = false;
  return {
    async extract(flow, path, runOptions = {}) {
      if (closed) throw new Error(`cannot extract ${path}: this extraction was closed`);
      hash ??= modelHash(extractor);
      return extractWith(tf, extractor, hash, () => (opened ??= openReplicas(extractor, engine, { train: false })), flow, path, runOptions);
    },
    async close() {
      closed = true;
      const pending = opened;
      opened = null;
      const result = await pending?.catch(() => null);
      await result?.replicas?.close();
    },
  };
}

/**
 * Extracts features of every image of `flow` (epoch 0, in the flow's order) into `path`. To
 * extract several flows with one base, openExtraction() compiles it once.
 *
 * @example
 * await extractFeatures(tf, featureExtractor(tf, base), valFlow, 'features/val.arrow');
 */
export async function extractFeatures(tf: Tf, extractor: LayersModel, flow: ImageFlow, path: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const extraction = openExtraction(tf, extractor, options);
  try {
    return await extraction.extract(flow, path, options);
  } finally {
    await extraction.close();
  }
}

async function extractWith(
  tf: Tf,
  extractor: LayersModel,
  hash: string,
  engine: () => ReturnType<typeof openReplicas>,
  flow: ImageFlow,
  path: string,
  options: ExtractRunOptions,
): Promise<ExtractResult> {
  const started = performance.now();
  const dimension = (extractor.outputs[0]!.shape as number[]).slice(1).reduce((a, b) => a * b, 1);
  const metadata = new Map<string, string>([
    [META.classNames, JSON.stringify(flow.classNames)],
    [META.classIndices, JSON.stringify(flow.classIndices)],
    [META.featureLayer, options.featureLayer ?? FEATURE_LAYER],
    [META.pooling, options.pooling ?? 'none'],
    [META.preprocess, flow.augment.preprocess ?? 'none'],
    [META.image, JSON.stringify(flow.image)],
    [META.augment, JSON.stringify(flow.augment)],
    [META.created, new Date().toISOString()],
    [META.version, VERSION],
    [META.format, String(FEATURE_FORMAT)],
    [META.baseModelSha256, hash],
    ...Object.entries(options.metadata ?? {}),
  ]);
  const transform = options.transform;
  const outDimension = transform?.pca ? transform.pca.components : dimension;
  if (transform)
    metadata.set(
      META.transform,
      JSON.stringify({ l2: transform.l2 ?? false, pca: transform.pca ? { components: transform.pca.components, from: dimension } : null }),
    );
  if (transform?.sequence) {
    const [t, d] = transform.sequence;
    if (!Number.isInteger(t) || !Number.isInteger(d) || t < 1 || d < 1 || t * d !== outDimension) {
      throw invalidOption('transform.sequence', `[timesteps, size] whose product is the feature dimension ${outDimension}`, transform.sequence);
    }
    metadata.set(META.sequence, JSON.stringify(transform.sequence));
  }
  const schema = featureSchema(outDimension, metadata);
  // Batches are journalled to <path>.journal.arrows as they are extracted; a run that stops (killed,
  // aborted, failed) leaves every complete batch there, and `resume: true` continues after them.
  const journal = `${path}.journal.arrows`;
  // The journal also records which images it holds (the listing, by name and order), so that a
  // resume over another set of images with the same classes starts over.
  const listing = createHash('sha256').update(flow.filenames.join('\n')).digest('hex');
  const journalSchema = new Schema(schema.fields, new Map([...schema.metadata, [JOURNAL_LISTING, listing]]));
  const found = options.resume ? await readJournal(journal, journalSchema) : { batches: [] };
  let done = found.batches;
  let discardedJournal = found.discarded;
  // Each journalled batch must be one of this flow's batches (same batch size), or start over.
  if (done.some((b, i) => b.numRows !== flow.batchSize && i !== flow.length - 1)) {
    discardedJournal = `${journal} holds batches of another batch size than ${flow.batchSize}`;
    done = [];
  }
  await rm(journal, { force: true });
  // The flow starts decoding its first batches before the session is compiled (on the first
  // extraction of an opened base), so that the decode workers do not wait for TensorFlow.
  const batches = flow.epoch(0, { ...(options.signal ? { signal: options.signal } : {}), from: done.length });
  const first = batches.next();
  let replicas: Awaited<ReturnType<typeof openReplicas>>['replicas'];
  let fallback: string | undefined;
  try {
    ({ replicas, fallback } = await engine());
  } catch (error) {
    first.catch(() => {});
    await batches.return();
    throw error;
  }
  const writer = new ArrowFileWriter(journal, journalSchema, { journal: true });
  for (const batch of done) writer.write(batch);
  let rows = done.reduce((n, b) => n + b.numRows, 0);
  const resumedRows = rows;
  let batchesDone = done.length;
  try {
    for (let next = await first; !next.done; next = await batches.next()) {
      const batch = next.value;
      let values: Float32Array;
      if (replicas) {
        // Each replica writes the feature rows of the image rows it read: row order is the flow's.
        values = new Float32Array(batch.size * dimension);
        const pixels = batch.images instanceof Float32Array ? batch.images : Float32Array.from(batch.images);
        await replicas.predict(pixels, batch.size, values);
        if (transform) {
          const projected = tf.tidy(() => applyTransform(tf, tf.tensor2d(values, [batch.size, dimension]), transform));
          values = (await projected.data()) as Float32Array;
          projected.dispose();
        }
      } else {
        const features = tf.tidy(() => {
          const x = tf.tensor4d(batch.images, batch.shape);
          return applyTransform(tf, (extractor.predict(x) as Tensor).reshape([batch.size, dimension]), transform);
        });
        values = (await features.data()) as Float32Array;
        features.dispose();
      }
      writer.write(featureRecordBatch(schema, batch.paths, batch.classIndex.slice(), values));
      rows += batch.size;
      options.onBatch?.({
        batch: ++batchesDone,
        batches: flow.length,
        rows,
        total: flow.samples,
        seconds: (performance.now() - started) / 1000,
        extractedRows: rows - resumedRows,
      });
    }
    await writer.finish();
  } catch (error) {
    await batches.return();
    await writer.suspend();
    throw error;
  }
  // The journal becomes the feature file: streamed back batch by batch (constant memory), written in
  // the IPC file format (random access, footer), renamed into place; then the journal goes.
  const file = new ArrowFileWriter(path, schema);
  try {
    for await (const batch of await RecordBatchReader.from(createReadStream(journal))) file.write(batch);
    await file.finish();
  } catch (error) {
    await file.abort();
    throw error;
  }
  await rm(journal, { force: true });
  return {
    path,
    featureLayer: options.featureLayer ?? FEATURE_LAYER,
    pooling: options.pooling ?? 'none',
    rows,
    dimension: outDimension,
    seconds: (performance.now() - started) / 1000,
    resumedBatches: done.length,
    engine: replicas ? 'graph' : 'eager',
    replicas: replicas?.replicas ?? 1,
    ...(fallback ? { fallback } : {}),
    ...(discardedJournal ? { discardedJournal } : {}),
  };
}

/** The journal's own metadata key: sha256 of the flow's file names in order. */
const JOURNAL_LISTING = 'featherstack.journal_listing_sha256';

/** Metadata keys that may differ between a journal and the run resuming it. */
const VOLATILE_METADATA = new Set<string>([META.created]);

/**
 * The complete record batches of a journal written for the same schema and metadata: the same
 * base model (by sha256), images (by name), classes, image settings, augmentation, transform and version. Anything
 * else is discarded with the reason, so that a resumed file never mixes two models' features.
 */
async function readJournal(journal: string, schema: Schema): Promise<{ batches: RecordBatch[]; discarded?: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(journal);
  } catch {
    return { batches: [] };
  }
  const batches: RecordBatch[] = [];
  try {
    for (const batch of RecordBatchReader.from(bytes)) batches.push(batch);
  } catch {
    // A batch cut off mid-write: keep the complete ones before it.
  }
  if (batches.length === 0) return { batches };
  const theirs = batches[0]!.schema;
  const same =
    theirs.fields.length === schema.fields.length &&
    theirs.fields.every((f, i) => f.name === schema.fields[i]!.name && String(f.type) === String(schema.fields[i]!.type));
  if (!same) return { batches: [], discarded: `${journal} was written with another feature schema` };
  const hash = META.baseModelSha256;
  if (theirs.metadata.get(hash) !== schema.metadata.get(hash)) {
    const short = (h: string | undefined) => (h ?? 'none').slice(0, 12);
    return {
      batches: [],
      discarded: `${journal} was written by base model ${short(theirs.metadata.get(hash))}…, not this one (${short(schema.metadata.get(hash))}…)`,
    };
  }
  if (theirs.metadata.get(JOURNAL_LISTING) !== schema.metadata.get(JOURNAL_LISTING))
    return { batches: [], discarded: `${journal} was written for other images (another listing of file names)` };
  for (const [key, value] of schema.metadata) {
    if (!VOLATILE_METADATA.has(key) && theirs.metadata.get(key) !== value)
      return { batches: [], discarded: `${journal} was written with another ${key.replace('featherstack.', '')}` };
  }
  return { batches };
}

/** A PCA projection fitted on training features (see fitPca). */
export interface Pca {
  components: number;
  /** Feature means, length D. */
  mean: Float32Array;
  /** Projection D × components (row-major), principal axes by decreasing variance. */
  projection: Float32Array;
  /** Share of the variance each component keeps. */
  explainedVariance: number[];
}

/** Optional transforms of each feature row before it is written. */
export interface FeatureTransform {
  /** Project onto principal components fitted with fitPca (applied first). */
  pca?: Pca;
  /** Scale each row to unit L2 norm. */
  l2?: boolean;
  /**
   * Declare each row a sequence of [timesteps, size] (their product: the output dimension), for
   * recurrent heads; recorded as `featherstack.sequence` (the values stay flat in the column).
   */
  sequence?: [number, number];
}

function applyTransform(tf: Tf, features: Tensor, transform: FeatureTransform | undefined): Tensor {
  let out = features;
  if (transform?.pca) {
    const { mean, projection, components } = transform.pca;
    out = tf.matMul(tf.sub(out, tf.tensor1d(mean)) as Tensor, tf.tensor2d(projection, [mean.length, components])) as Tensor;
  }
  if (transform?.l2) out = tf.div(out, tf.maximum(tf.norm(out, 'euclidean', 1, true), 1e-12)) as Tensor;
  return out;
}

/**
 * Fits PCA on the features of `flow` (the training set): streams the extractor over it,
 * accumulates the covariance and keeps the top `components` eigenvectors.
 *
 * @example
 * const pca = await fitPca(tf, extractor, plainTrain, { components: 32 });
 * await extractFeatures(tf, extractor, plainTrain, 'train.arrow', { transform: { pca, l2: true } });
 */
export async function fitPca(tf: Tf, extractor: LayersModel, flow: ImageFlow, options: { components: number; signal?: AbortSignal }): Promise<Pca> {
  const d = (extractor.outputs[0]!.shape as number[]).slice(1).reduce((a, b) => a * b, 1);
  const k = options.components;
  if (!Number.isInteger(k) || k < 1 || k > d) throw invalidOption('components', `an integer in [1, ${d}]`, k);
  const covariance = new Covariance(d);
  for await (const batch of flow.epoch(0, options.signal ? { signal: options.signal } : {})) {
    const f = tf.tidy(() => (extractor.predict(tf.tensor4d(batch.images, batch.shape)) as Tensor).reshape([batch.size, d]));
    const v = (await f.data()) as Float32Array;
    f.dispose();
    for (let r = 0; r < batch.size; r++) covariance.add(v, r * d);
  }
  const { mean, matrix } = covariance.finish({ center: true });
  const { values, vectors } = symmetricEigen(matrix, d);
  const order = Array.from(values.keys()).sort((a, b) => values[b]! - values[a]!);
  const total = values.reduce((s, x) => s + Math.max(0, x), 0) || 1;
  const projection = new Float32Array(d * k);
  for (let c = 0; c < k; c++) for (let i = 0; i < d; i++) projection[i * k + c] = vectors[i * d + order[c]!]!;
  return { components: k, mean: Float32Array.from(mean), projection, explainedVariance: order.slice(0, k).map((i) => Math.max(0, values[i]!) / total) };
}
