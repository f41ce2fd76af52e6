/**
 * ImageFlow: a re-iterable dataset of augmented image batches. It ties the pieces together — the
 * resolved options (options.ts), the decode pool, the slot ring (batch/), the order (order.ts), one
 * epoch run at a time (epoch.ts) and fit()'s statistics (statistics.ts) — and holds no logic of
 * its own beyond that.
 */
import { resolve } from 'node:path';
import { epochOrder } from '@featherstack/common';
import type { Schema } from 'apache-arrow';
import type { AugmentSpec } from '../augment.js';
import { imageBatchSchema } from '../batch/arrow.js';
import type { BatchLayout, ClassMode, ImageBatch } from '../batch/batch.js';
import { SlotRing } from '../batch/slot.js';
import { type CacheKey, cacheFormatName, cacheKey, fileStamp, type PixelCacheIndex, RAW_CACHE } from '../cache.js';
import { DatasetError, invalidOption, PoolClosedError } from '../errors.js';
import { DecodePool, poolOf } from '../pool/pool.js';
import type { ImageSpec, PixelType } from '../image-spec.js';
import type { SampleSource } from '../pool/protocol.js';
import { type EpochContext, type RunSettings, runEpoch } from './epoch.js';
import { testHooksOf } from './hooks.js';
import { type FlowOptions, type FlowSpec, resolveFlowOptions, type SkippedFile } from './options.js';
import { type FlowSource, shardOf } from './order.js';
import { packOrder } from '../pack/order.js';
import { PackEpochReader, readImages } from '../pack/read.js';
import { fitStatistics, type Statistics } from './statistics.js';

/**
 * What a flow does with the pixel cache asked for: none asked; reading a finished one; writing one
 * in the first epoch (`bytes` of the budget); or not writing it, over its budget, with the reason.
 */
export type CachePlan =
  | { state: 'none' }
  | { state: 'read'; path: string; format: string }
  /** `bytes`: what a raw cache takes; null for an encoded one, whose size is known as it is written (within `budget`). */
  | { state: 'write'; path: string; format: string; bytes: number | null; budget: number }
  | { state: 'over-budget'; path: string; format: string; bytes: number; budget: number; reason: string }
  /** The flow reads a pack: its encoded images are the cache, and no pixel cache is written. */
  | { state: 'pack'; path: string };

/** Where a flow stands: the next batch `batch` of epoch `epoch` (see ImageFlow.state and resumeFrom). */
export interface FlowState {
  epoch: number;
  batch: number;
  seed: number;
  samples: number;
}

/** A re-iterable dataset of augmented image batches decoded by a worker pool. */
export class ImageFlow implements AsyncIterable<ImageBatch> {
  readonly root: string;
  readonly classNames: string[];
  readonly classIndices: Record<string, number>;
  /** Paths relative to `root`, in dataset order. */
  readonly filenames: string[];
  /** Class index of every sample, in dataset order (-1 for raw / multi_output). */
  readonly classes: Int32Array;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly classMode: ClassMode;
  readonly dtype: PixelType;
  readonly image: ImageSpec;
  readonly augment: AugmentSpec;
  readonly schema: Schema;
  /** Path of the pixel cache, when one was asked for. */
  readonly cachePath: string | null;
  /** What happens to the pixel cache asked for (set when the flow is made). */
  cachePlan: CachePlan = { state: 'none' };
  /** Manifest rows left out because their class is not in `classes` (1-based line numbers). */
  excludedRows: number[] = [];
  /** Per-channel statistics from fit(), in the units standardisation sees. */
  statistics: Statistics | null = null;
  /** Files skipped in the most recent epoch (onError: 'skip'); complete when that epoch ends. */
  skippedFiles: SkippedFile[] = [];
  private readonly spec: FlowSpec;
  private readonly pool: DecodePool;
  private readonly ring: SlotRing;
  private readonly source: FlowSource;
  private readonly cache: EpochContext['cache'];
  private nextEpoch = 0;
  private position = { epoch: 0, batch: 0 };
  private active = false;
  private closed = false;

  /** @internal Use flowFromDirectory(), flowFromManifest(), flowFromFiles() or flowFromArray(). */
  constructor(whole: FlowSource, options: FlowOptions) {
    const source = shardOf(whole, options.shard);
    const spec = resolveFlowOptions(source, options);
    const { manifest } = source;
    this.spec = spec;
    this.source = source;
    this.root = manifest.root;
    this.classNames = manifest.classNames;
    this.classIndices = manifest.classIndices;
    this.filenames = manifest.paths;
    this.classes = manifest.labels;
    this.batchSize = spec.batchSize;
    this.seed = spec.seed;
    this.shuffle = spec.shuffle;
    this.classMode = spec.classMode;
    this.dtype = spec.dtype;
    this.image = spec.image;
    this.augment = spec.augment;
    this.cachePath = spec.cachePath;
    const { height, width, channels } = spec.image;
    this.schema = imageBatchSchema(height * width * channels, new Map([['class_names', JSON.stringify(this.classNames)]]), spec.dtype);
    this.cache = {
      path: spec.cachePath,
      key: () => this.pixelCacheKey,
      index: source.cacheIndex ?? null,
      encoding: spec.cacheEncoding,
      budget: Number.POSITIVE_INFINITY,
      decline: (bytes, reason) =>
        this.declineCache({
          state: 'over-budget',
          path: spec.cachePath!,
          format: this.cacheFormat,
          bytes,
          budget: this.cache.budget,
          reason,
        }),
    };
    this.ring = new SlotRing(spec.batchSize, height * width * channels, spec.dtype, spec.prefetch + 1);
    this.pool = spec.pool ? poolOf(spec.pool) : new DecodePool(spec.workers);
  }

  /** The pack (or directory of WebDataset tars) this flow reads, or null. */
  get packDir(): string | null {
    return this.source.pack?.dir ?? null;
  }

  /**
   * The stored (encoded) bytes of samples of a flow over a pack or tars, reading only the shards
   * that hold them: a report's sample images. Refused for other flows (their files are on disk).
   */
  async encodedImages(samples: number[]): Promise<Buffer[]> {
    if (!this.source.pack) throw new Error('encodedImages: this flow reads files, not a pack or tars');
    return readImages(this.source.pack, samples);
  }

  /** Number of samples. */
  get samples(): number {
    return this.filenames.length;
  }

  /** Batches per epoch: ceil(samples / batchSize). */
  get length(): number {
    return Math.ceil(this.samples / this.batchSize);
  }

  get workers(): number {
    return this.pool.workers;
  }

  /** Tasks of this flow's pool retried because their worker died. */
  get retries(): number {
    return this.pool.retries;
  }

  private cacheKeyMemo: CacheKey | null = null;
  private fileStampMemo = '';

  /**
   * @internal Stats every file once (size, modification and change time, inode) for the pixel
   * cache's key; `known` is a sibling's stamp of the very same files, taken when it was made.
   */
  async stampFiles(known?: string): Promise<void> {
    this.fileStampMemo = known ?? (await fileStamp(this.filenames.map((f) => resolve(this.root, f))));
    this.cacheKeyMemo = null;
  }

  /**
   * @internal What a sibling flow over the same files starts from: this flow's files (after its
   * listing options and shard) and their stamp, when a cache made it take one. Refused for a flow
   * over a pack, tars or an array, whose samples are not files.
   */
  get siblingSource(): { source: FlowSource; stamp: string | null } {
    if (this.source.pack || this.source.array)
      throw new Error(`siblingFlow: a flow over files only (this one reads ${this.source.pack ? 'a pack' : 'an array'})`);
    const { cacheIndex: _index, ...source } = this.source;
    return { source, stamp: this.fileStampMemo === '' ? null : this.fileStampMemo };
  }

  /**
   * @internal What this flow's pixel cache must have been built for: the image settings, every
   * path and every file's size, modification and change time and inode (hashed once, when the flow opens).
   */
  get pixelCacheKey(): CacheKey {
    this.cacheKeyMemo ??= cacheKey(this.image, this.filenames, this.fileStampMemo, this.spec.cacheEncoding);
    return this.cacheKeyMemo;
  }

  /** @internal The pixel cache would not fit its budget: epochs decode, nothing (more) is written. */
  declineCache(plan: CachePlan & { state: 'over-budget' }): void {
    this.cache.path = null;
    this.cachePlan = plan;
  }

  /** @internal The first full epoch writes the pixel cache, within `budget` bytes. */
  planCache(plan: CachePlan & { state: 'write' }): void {
    this.cache.budget = plan.budget;
    this.cachePlan = plan;
  }

  /** @internal Reads epochs from a finished pixel cache. */
  useCache(index: PixelCacheIndex): void {
    this.cache.index = index;
    this.cachePlan = { state: 'read', path: this.cachePath!, format: cacheFormatName(index.encoded?.encoding ?? RAW_CACHE) };
  }

  /** How the pixel cache asked for stores its rows: `raw`, `png` or `jpeg:Q`. */
  get cacheFormat(): string {
    return cacheFormatName(this.spec.cacheEncoding);
  }

  /** Whether epochs read the pixel cache instead of decoding. */
  get cached(): boolean {
    return this.cache.index !== null;
  }

  /** The decode failures the flow's pixel cache recorded when it was built (replayed every epoch), by path. */
  get cachedFailures(): { path: string; reason: string }[] {
    const errors = this.cache.index?.errors ?? new Map<number, string>();
    return [...errors].sort(([a], [b]) => a - b).map(([sample, reason]) => ({ path: `${this.root}/${this.filenames[sample]!}`, reason }));
  }

  [Symbol.asyncIterator](): AsyncIterator<ImageBatch> {
    return this.epoch(this.nextEpoch++);
  }

  /**
   * A single-use iterator over the batches of `epoch`. With the same seed, the batches of an epoch
   * are bit-identical whatever the worker count.
   *
   * @example
   * for await (const batch of flow.epoch(0)) model.trainOnBatch(toTensor(batch), labels(batch));
   */
  epoch(epoch: number, options: { signal?: AbortSignal; from?: number } = {}): AsyncGenerator<ImageBatch, void, undefined> {
    const from = options.from ?? 0;
    if (!Number.isInteger(from) || from < 0) throw invalidOption('from', 'a non-negative batch index', from);
    return this.run(epoch, this.settings(), options.signal, from);
  }

  /**
   * Where iteration stands: the next batch of the epoch being (or last) iterated. Saved with a
   * checkpoint, `resumeFrom(state)` continues with exactly the batches an uninterrupted epoch would
   * have yielded from there (the order depends only on the seed and epoch, never on timing or workers).
   */
  state(): FlowState {
    return { ...this.position, seed: this.seed, samples: this.samples };
  }

  /**
   * The rest of the epoch `state` stood in: batches `state.batch`, … of `state.epoch`. Refused when
   * the state belongs to a flow with another seed or sample count.
   *
   * @example
   * const saved = flow.state(); // …the process dies…
   * for await (const batch of flow.resumeFrom(saved)) train(batch);
   */
  resumeFrom(state: FlowState, options: { signal?: AbortSignal } = {}): AsyncGenerator<ImageBatch, void, undefined> {
    if (typeof state !== 'object' || state === null || !Number.isInteger(state.epoch) || !Number.isInteger(state.batch))
      throw invalidOption('state', 'a FlowState from flow.state()', state);
    if (state.seed !== this.seed || state.samples !== this.samples)
      throw invalidOption('state', `a state of a flow with seed ${this.seed} over ${this.samples} samples`, `seed ${state.seed}, ${state.samples} samples`);
    this.nextEpoch = state.epoch + 1;
    return this.epoch(state.epoch, { ...options, from: state.batch });
  }

  /**
   * Computes the per-channel mean and std that featurewiseCenter / featurewiseStdNormalization use
   * (Keras's `ImageDataGenerator.fit`), streaming over the first `samples` samples in file order
   * (default: all) without augmentation. Statistics are in the units standardisation sees — after
   * the preprocessing function, rescale and samplewise normalisation; Keras computes them on raw
   * pixels and then subtracts them from rescaled ones, which `augment.keras: true` reproduces.
   * With zcaWhitening it also computes the whitening matrix from the covariance of those samples.
   */
  async fit(options: { samples?: number; signal?: AbortSignal } = {}): Promise<{ mean: number[]; std: number[] }> {
    const samples = options.samples ?? this.samples;
    if (!Number.isInteger(samples) || samples < 1) throw invalidOption('samples', 'a positive integer', samples);
    if (this.dtype !== 'float32') throw invalidOption('dtype', "'float32' for fit()", this.dtype);
    const limit = Math.min(samples, this.samples);
    this.statistics = await fitStatistics((settings) => this.run(0, settings, options.signal), this.image, this.augment, limit);
    return { mean: this.statistics.mean, std: this.statistics.std };
  }

  /** Ends the flow and, unless it was given a shared pool, every worker. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.spec.pool) await this.pool.close();
  }

  private settings(): RunSettings {
    const a = this.augment;
    if ((a.featurewiseCenter || a.featurewiseStdNormalization || a.zcaWhitening) && !this.statistics) {
      throw new DatasetError('augment.featurewiseCenter / featurewiseStdNormalization / zcaWhitening need statistics: call `await flow.fit()` first');
    }
    return {
      augment: a,
      normalization: {
        samplewiseCenter: a.samplewiseCenter,
        samplewiseStd: a.samplewiseStdNormalization,
        mean: a.featurewiseCenter ? this.statistics!.mean : null,
        std: a.featurewiseStdNormalization ? this.statistics!.std : null,
        zca: a.zcaWhitening ? this.statistics!.zca : null,
      },
      shuffle: this.shuffle,
      limit: this.samples,
    };
  }

  /** `from`: the first batch to produce (resuming work); earlier batches are neither loaded nor yielded. */
  private async *run(epoch: number, settings: RunSettings, signal: AbortSignal | undefined, from = 0): AsyncGenerator<ImageBatch, void, undefined> {
    if (!Number.isInteger(epoch) || epoch < 0) throw invalidOption('epoch', 'a non-negative integer', epoch);
    if (this.closed) throw new PoolClosedError('this flow is closed');
    if (this.active) throw new Error('another epoch of this flow is still being iterated; finish or break it first');
    // A signal aborted before the epoch starts never fires 'abort' again: refuse at once.
    if (signal?.aborted) throw signal.reason ?? new PoolClosedError('iteration aborted');
    this.active = true;
    this.skippedFiles = [];
    const { pack } = this.source;
    const order = pack
      ? packOrder(this.packGroups(), this.seed, epoch, settings.shuffle, pack.buffer)
      : epochOrder(this.samples, this.seed, epoch, settings.shuffle);
    const reader = pack ? new PackEpochReader(pack, order.subarray(0, settings.limit), from * this.batchSize) : null;
    const tracked = settings.limit === this.samples;
    if (tracked) this.position = { epoch, batch: from };
    try {
      for await (const batch of runEpoch(this.context(reader), { epoch, order, settings, from, signal, skipped: this.skippedFiles })) {
        if (tracked) this.position = { epoch, batch: batch.index + 1 };
        yield batch;
      }
      if (tracked) this.position = { epoch: epoch + 1, batch: 0 };
    } finally {
      reader?.close();
      this.active = false;
    }
  }

  /** Samples per pack shard, in shard order (flow samples are in pack order). */
  private packGroups(): number[] {
    const pack = this.source.pack!;
    const groups = new Array<number>(pack.files.length).fill(0);
    for (const s of pack.shard) groups[s]!++;
    return groups;
  }

  private context(reader: PackEpochReader | null = null): EpochContext {
    const { spec, source } = this;
    const layout: BatchLayout = {
      ...spec.image,
      classMode: spec.classMode,
      numClasses: this.classNames.length,
      targets: source.targets ?? [],
      outputWidths: source.outputWidths ?? [],
      schema: this.schema,
      pathOf: source.array ? (s) => `#${s}` : (s) => this.filenames[s]!,
    };
    return {
      pool: this.pool,
      ring: this.ring,
      image: spec.image,
      dtype: spec.dtype,
      seed: spec.seed,
      batchSize: spec.batchSize,
      prefetch: spec.prefetch,
      samples: this.samples,
      classes: this.classes,
      layout,
      hooks: testHooksOf(this),
      onError: spec.onError,
      onSkip: spec.onSkip,
      sourceFor: reader ? (samples) => reader.sourceFor(samples, (k) => `${this.root}/${this.filenames[k]!}`) : (samples) => this.sourceFor(samples),
      cache: this.cache,
    };
  }

  private sourceFor(samples: number[]): SampleSource {
    const { array } = this.source;
    if (array) return { kind: 'array', data: array.data, dtype: array.dtype };
    if (this.cache.index) {
      const { file, files, offsets, crcs, errors, encoded } = this.cache.index;
      return {
        kind: 'cache',
        file,
        ...(files ? { files: samples.map((s) => files[s]!) } : {}),
        offsets: samples.map((s) => offsets[s]!),
        crcs: samples.map((s) => crcs[s]!),
        errors: samples.map((s) => errors.get(s) ?? null),
        paths: samples.map((s) => `${this.root}/${this.filenames[s]!}`),
        ...(encoded ? { encoded: { encoding: encoded.encoding, lengths: samples.map((s) => encoded.lengths[s]!) } } : {}),
      };
    }
    return { kind: 'files', root: this.root, paths: samples.map((s) => this.filenames[s]!) };
  }
}
