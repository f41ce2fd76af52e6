/**
 * Flows: re-iterable datasets of image batches (Keras's DirectoryIterator, DataFrameIterator and
 * NumpyArrayIterator). Each call to `epoch()` returns a single-use async iterator;
 * `for await (const batch of flow)` runs the next epoch.
 *
 * Memory: a flow allocates `prefetch + 1` batch slots once, up front, as SharedArrayBuffers. Workers
 * write pixels straight into a slot; the consumer reads the slot through typed-array and Arrow
 * views. A yielded batch's memory stays valid until the consumer asks for the next batch (or ends
 * the loop); then the slot is recycled. Copy what must outlive that (`batch.images.slice()`).
 */
import { randomInt } from 'node:crypto';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { RecordBatch, Schema } from 'apache-arrow';
import { imageBatchSchema, imageRecordBatch } from './arrow.js';
import { type AugmentOptions, type AugmentSpec, resolveAugment } from './augment.js';
import { type CacheKey, cacheKey, cacheSchema, fileStamp, openPixelCache, type PixelCacheIndex, PixelCacheWriter } from './cache.js';
import { DecodePool, resolveWorkers } from './engine.js';
import { DatasetError, ImageDecodeError, invalidOption, PoolClosedError } from './errors.js';
import type { ColorMode, DecodeFailure, DecodeTask, ImageSpec, Interpolation, Normalization, PixelType, SampleSource } from './protocol.js';
import { epochOrder } from './rng.js';
import { zcaMatrix } from './zca.js';
import { type DirectoryListingOptions, listDirectory, type Manifest } from './sources/directory.js';
import { type ManifestOptions, readManifest } from './sources/manifest.js';

const pools = new WeakMap<ImagePool, DecodePool>();
function poolOf(handle: ImagePool): DecodePool {
  return pools.get(handle)!;
}

/** A decode worker pool that several flows share. Close it when every flow is done. */
export class ImagePool {
  readonly workers: number;
  /** @internal Use createImagePool(). */
  constructor(workers: number) {
    this.workers = workers;
    pools.set(this, new DecodePool(workers));
  }

  /** Tasks retried because their worker died. */
  get retries(): number {
    return poolOf(this).retries;
  }

  /** Workers that stopped before the pool closed (crashed, and were replaced). */
  get workersLost(): number {
    return poolOf(this).workersLost;
  }

  close(): Promise<void> {
    return poolOf(this).close();
  }
}

/**
 * Starts a pool of decode workers to share between flows.
 *
 * @example
 * const pool = createImagePool({ workers: 4 });
 * const train = await flowFromDirectory('data/train', { pool });
 */
export function createImagePool(options: { workers?: number } = {}): ImagePool {
  return new ImagePool(resolveWorkers(options.workers));
}

export type ClassMode = 'categorical' | 'binary' | 'sparse' | 'input' | 'none' | 'raw' | 'multi_output';

/** Options shared by every kind of flow. */
export interface BaseFlowOptions {
  classMode?: ClassMode;
  batchSize?: number;
  shuffle?: boolean;
  /** Seed for order and augmentation. Default: a random seed, exposed as `flow.seed`. */
  seed?: number;
  augment?: AugmentOptions;
  /** Decode workers. Default: every core. Ignored when `pool` is given. */
  workers?: number;
  /** A pool shared with other flows (e.g. train and validation); the flow then does not close it. */
  pool?: ImagePool;
  /** Batches decoded ahead of the consumer. Default: max(2, workers). */
  prefetch?: number;
  /**
   * Pixel type of batches: 'float32' (default) or 'uint8' (4× less memory and bandwidth; values
   * rounded and clamped to 0–255, so it excludes rescale and normalisation).
   */
  dtype?: PixelType;
  /**
   * What an image that cannot be decoded does: 'raise' (default) ends the epoch with an
   * ImageDecodeError naming the file; 'skip' delivers every good image (batches holding a bad one
   * are shorter), reports each skipped file through `onSkip` as it happens and lists them in
   * `flow.skippedFiles` when the epoch ends.
   */
  onError?: 'raise' | 'skip';
  /** Called for every file skipped under onError: 'skip'. */
  onSkip?: (file: SkippedFile) => void;
  /**
   * Only samples i with i mod count = index: `{ index, count }` lets several processes or machines
   * work on disjoint parts of one dataset (e.g. sharded feature extraction).
   */
  shard?: { index: number; count: number };
  /** Test hook: random delay of up to n ms per task, to reorder worker completions. @internal */
  jitterMs?: number;
  /** Test hook: the worker exits on every attempt ≤ n (0 = first try only). @internal */
  crashOnAttempt?: number;
}

/** Options of flows that load image files. */
export interface FileFlowOptions extends BaseFlowOptions {
  /** [height, width] every image is resized to. Default [256, 256] (Keras's default). */
  targetSize?: [number, number];
  colorMode?: ColorMode;
  /** Resize filter. Default 'nearest' (Keras's default). */
  interpolation?: Interpolation;
  /** Resize to cover the target and centre-crop instead of stretching. */
  keepAspectRatio?: boolean;
  /**
   * Random-resized-crop before resizing (torchvision's semantics): a crop of `scale` (default
   * [0.08, 1]) of the area at a log-uniform aspect ratio in `ratio` (default [3/4, 4/3]).
   */
  randomCrop?: boolean | { scale?: [number, number]; ratio?: [number, number] };
  /** Largest accepted image, in pixels (width × height). Default 16384². */
  pixelLimit?: number;
  /**
   * Decode and resize in one libvips pass, with JPEG shrink-on-load when the target is much
   * smaller than the source. Faster; pixels differ slightly from Keras's PIL resizing, which the
   * default reproduces exactly for 'nearest'. Default false.
   */
  fastDecode?: boolean;
  /**
   * Path of a pixel cache (Arrow IPC). The first epoch writes decoded, resized uint8 pixels there;
   * later epochs, and later flows with the same files and image settings, read them instead of
   * decoding. A cache built for other files or settings is refused with an error naming it.
   */
  cache?: string;
}

export interface FlowOptions extends FileFlowOptions, DirectoryListingOptions {}

/** A file left out of an epoch under onError: 'skip'. */
export interface SkippedFile {
  epoch: number;
  path: string;
  reason: string;
}

/** One batch. Its typed arrays view shared memory that is recycled when the next batch is requested. */
export interface ImageBatch {
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  size: number;
  /** [size, height, width, channels]. */
  shape: [number, number, number, number];
  /** NHWC pixels (float32, or uint8 with dtype 'uint8'). */
  images: Float32Array | Uint8Array;
  /** Class index of each sample (-1 for raw and multi_output labels). */
  classIndex: Int32Array;
  /** Dataset index of each sample. */
  samples: Uint32Array;
  /** Paths relative to the flow's root (`#i` for in-memory samples). */
  paths: string[];
  /**
   * Labels in the flow's class mode: one-hot for categorical, class index for binary and sparse,
   * the target vectors for raw, the images for input; undefined for none.
   */
  labels(): Float32Array | Uint8Array | undefined;
  /** One label array per model output (multi_output); a single-element list otherwise. */
  outputs(): (Float32Array | Uint8Array)[];
  /** The batch as an Arrow RecordBatch whose columns view the same memory. */
  toRecordBatch(): RecordBatch;
  /**
   * Keeps this batch's memory from being refilled while `holder` (e.g. a tfjs tensor built on
   * `images`, which may alias it) is not disposed.
   */
  retain(holder: { readonly isDisposed: boolean }): void;
}

/** Where a flow's samples come from. @internal */
export interface FlowSource {
  manifest: Manifest;
  /** Numeric targets of raw / multi_output manifests, one array per output. */
  targets?: Float32Array[];
  outputWidths?: number[];
  array?: { data: SharedArrayBuffer; dtype: PixelType; height: number; width: number; channels: 1 | 3 | 4 };
  cacheIndex?: PixelCacheIndex | null;
}

interface Slot {
  images: SharedArrayBuffer;
  view: Float32Array | Uint8Array;
  classIndex: Int32Array;
  samples: Uint32Array;
  /** uint8 staging rows for the pixel cache, allocated by the first caching epoch. */
  cache: SharedArrayBuffer | null;
  /** Objects (e.g. tfjs tensors) that still read this slot's memory; it is refilled only once all are disposed. */
  holds: { readonly isDisposed: boolean }[];
}

function positiveInt(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidOption(name, 'a positive integer', value);
  return value;
}

function range(name: string, value: unknown, fallback: [number, number], ok: (lo: number, hi: number) => boolean, expected: string): [number, number] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'number' || typeof value[1] !== 'number' || !ok(value[0], value[1])) {
    throw invalidOption(name, expected, value);
  }
  return [value[0], value[1]];
}

function resolveCrop(value: FileFlowOptions['randomCrop']): ImageSpec['randomCrop'] {
  if (value === undefined || value === false) return null;
  if (value !== true && (typeof value !== 'object' || value === null)) throw invalidOption('randomCrop', 'a boolean or { scale, ratio }', value);
  const o = value === true ? {} : value;
  return {
    scale: range('randomCrop.scale', o.scale, [0.08, 1], (lo, hi) => lo > 0 && hi <= 1 && lo <= hi, '[lo, hi] with 0 < lo ≤ hi ≤ 1'),
    ratio: range('randomCrop.ratio', o.ratio, [3 / 4, 4 / 3], (lo, hi) => lo > 0 && lo <= hi && Number.isFinite(hi), '[lo, hi] with 0 < lo ≤ hi'),
  };
}

const CHANNELS: Record<ColorMode, 1 | 3 | 4> = { grayscale: 1, rgb: 3, rgba: 4 };
const COLOR_MODES: Record<number, ColorMode> = { 1: 'grayscale', 3: 'rgb', 4: 'rgba' };

/** Overrides of fit(): statistics are gathered without augmentation or normalisation. */
interface RunSettings {
  augment: AugmentSpec;
  normalization: Normalization;
  shuffle: boolean;
  limit: number;
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
  /** Manifest rows left out because their class is not in `classes` (1-based line numbers). */
  excludedRows: number[] = [];
  /** Per-channel statistics from fit(), in the units standardisation sees. */
  statistics: { mean: number[]; std: number[]; zca: SharedArrayBuffer | null } | null = null;
  private readonly pool: DecodePool;
  private readonly ownsPool: boolean;
  private readonly prefetch: number;
  private readonly jitterMs: number;
  private readonly crashOnAttempt: number | undefined;
  private readonly slots: Slot[];
  private readonly source: FlowSource;
  private cacheIndex: PixelCacheIndex | null;
  /** Files skipped in the most recent epoch (onError: 'skip'); complete when that epoch ends. */
  skippedFiles: SkippedFile[] = [];
  private readonly onError: 'raise' | 'skip';
  private readonly onSkip: ((file: SkippedFile) => void) | undefined;
  private nextEpoch = 0;
  private active = false;
  private closed = false;

  /** @internal Use flowFromDirectory(), flowFromManifest() or flowFromArray(). */
  constructor(whole: FlowSource, options: FlowOptions) {
    const source = shardOf(whole, options.shard);
    const { manifest } = source;
    let height: number;
    let width: number;
    let colorMode: ColorMode;
    if (source.array) {
      ({ height, width } = source.array);
      colorMode = COLOR_MODES[source.array.channels]!;
    } else {
      // Validated before destructuring: a number or string here must get the option's message, not a TypeError.
      const targetSize: unknown = options.targetSize ?? [256, 256];
      if (!Array.isArray(targetSize) || targetSize.length !== 2 || !targetSize.every((v) => Number.isInteger(v) && v >= 1)) {
        throw invalidOption('targetSize', '[height, width] of positive integers', options.targetSize);
      }
      [height, width] = targetSize as [number, number];
      colorMode = options.colorMode ?? 'rgb';
      if (!(colorMode in CHANNELS)) throw invalidOption('colorMode', "'grayscale', 'rgb' or 'rgba'", colorMode);
    }
    const hasTargets = (source.targets?.length ?? 0) > 0;
    const classMode = options.classMode ?? (hasTargets ? 'raw' : 'categorical');
    if (!['categorical', 'binary', 'sparse', 'input', 'none', 'raw', 'multi_output'].includes(classMode)) {
      throw invalidOption('classMode', "'categorical', 'binary', 'sparse', 'input', 'none', 'raw' or 'multi_output'", classMode);
    }
    if ((classMode === 'raw' || classMode === 'multi_output') !== hasTargets && classMode !== 'input' && classMode !== 'none') {
      throw invalidOption('classMode', hasTargets ? "'raw' or 'multi_output' for numeric targets" : "a class-based mode: this source has no numeric targets ('raw' and 'multi_output' need a manifest with numeric label columns)", classMode);
    }
    if (classMode === 'binary' && manifest.classNames.length !== 2) {
      throw invalidOption('classMode', `'binary' only with exactly 2 classes (found ${manifest.classNames.length})`, classMode);
    }
    const interpolation = options.interpolation ?? 'nearest';
    if (!['nearest', 'bilinear', 'bicubic', 'lanczos'].includes(interpolation)) {
      throw invalidOption('interpolation', "'nearest', 'bilinear', 'bicubic' or 'lanczos'", interpolation);
    }
    const seed = options.seed ?? randomInt(2 ** 31);
    if (!Number.isInteger(seed)) throw invalidOption('seed', 'an integer', seed);
    if (options.shuffle !== undefined && typeof options.shuffle !== 'boolean') throw invalidOption('shuffle', 'a boolean', options.shuffle);
    if (options.pool !== undefined && !(options.pool instanceof ImagePool)) throw invalidOption('pool', 'an ImagePool from createImagePool()', typeof options.pool);
    const dtype = options.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'uint8') throw invalidOption('dtype', "'float32' or 'uint8'", dtype);
    const workers = options.pool ? options.pool.workers : resolveWorkers(options.workers);
    this.source = source;
    this.root = manifest.root;
    this.classNames = manifest.classNames;
    this.classIndices = manifest.classIndices;
    this.filenames = manifest.paths;
    this.classes = manifest.labels;
    this.batchSize = positiveInt('batchSize', options.batchSize, 32);
    this.prefetch = positiveInt('prefetch', options.prefetch, Math.max(2, workers));
    this.seed = seed;
    this.shuffle = options.shuffle ?? true;
    this.classMode = classMode;
    this.dtype = dtype;
    this.jitterMs = options.jitterMs ?? 0;
    this.crashOnAttempt = options.crashOnAttempt;
    this.onError = options.onError ?? 'raise';
    if (this.onError !== 'raise' && this.onError !== 'skip') throw invalidOption('onError', "'raise' or 'skip'", options.onError);
    if (options.onSkip !== undefined && typeof options.onSkip !== 'function') throw invalidOption('onSkip', 'a function', typeof options.onSkip);
    this.onSkip = options.onSkip;
    if (options.keepAspectRatio !== undefined && typeof options.keepAspectRatio !== 'boolean') throw invalidOption('keepAspectRatio', 'a boolean', options.keepAspectRatio);
    this.image = {
      height,
      width,
      channels: CHANNELS[colorMode],
      colorMode,
      interpolation,
      keepAspectRatio: options.keepAspectRatio ?? false,
      pixelLimit: positiveInt('pixelLimit', options.pixelLimit, 16384 * 16384),
      randomCrop: resolveCrop(options.randomCrop),
      fastDecode: options.fastDecode ?? false,
    };
    if (typeof this.image.fastDecode !== 'boolean') throw invalidOption('fastDecode', 'a boolean', options.fastDecode);
    this.augment = resolveAugment(options.augment ?? {});
    const a = this.augment;
    if (
      dtype === 'uint8' &&
      (a.rescale !== 1 || a.samplewiseCenter || a.samplewiseStdNormalization || a.featurewiseCenter || a.featurewiseStdNormalization || a.zcaWhitening || a.preprocessingFunction)
    ) {
      throw invalidOption('dtype', "'float32' when rescale, normalisation or a preprocessing function is used", dtype);
    }
    if (options.cache !== undefined && (typeof options.cache !== 'string' || options.cache.length === 0)) throw invalidOption('cache', 'a file path', options.cache);
    if (options.cache !== undefined && source.array) throw invalidOption('cache', 'unset for in-memory arrays (they are decoded already)', options.cache);
    if (options.cache !== undefined && this.image.randomCrop) throw invalidOption('cache', 'unset with randomCrop (crops are cut from the full-size image)', options.cache);
    this.cachePath = options.cache !== undefined ? resolve(options.cache) : null;
    this.cacheIndex = source.cacheIndex ?? null;
    const metadata = new Map([['class_names', JSON.stringify(this.classNames)]]);
    this.schema = imageBatchSchema(height * width * this.image.channels, metadata, dtype);
    // Slots are allocated up front: memory is (prefetch + 1) × batch bytes for the flow's life, more
    // only while a consumer keeps tensors retained on earlier batches (takeSlot). Refused by name
    // when that cannot fit in half of this machine's memory (an allocation failure names nothing).
    const slotBytes = this.batchSize * height * width * this.image.channels * (dtype === 'uint8' ? 1 : 4);
    if (slotBytes * (this.prefetch + 1) > totalmem() / 2) {
      const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
      throw invalidOption(
        'batchSize',
        `small enough that ${this.prefetch + 1} batches of ${height}×${width}×${this.image.channels} ${dtype} images fit in half of this machine's ${gib(totalmem())} (${gib(slotBytes * (this.prefetch + 1))} asked for; lower batchSize or targetSize)`,
        this.batchSize,
      );
    }
    this.slots = Array.from({ length: this.prefetch + 1 }, () => this.newSlot());
    this.ownsPool = options.pool === undefined;
    this.pool = options.pool ? poolOf(options.pool) : new DecodePool(workers);
  }

  private newSlot(): Slot {
    const sampleSize = this.image.height * this.image.width * this.image.channels;
    const images = new SharedArrayBuffer(this.batchSize * sampleSize * (this.dtype === 'uint8' ? 1 : 4));
    return {
      images,
      view: this.dtype === 'uint8' ? new Uint8Array(images) : new Float32Array(images),
      classIndex: new Int32Array(this.batchSize),
      samples: new Uint32Array(this.batchSize),
      cache: null,
      holds: [],
    };
  }

  /**
   * A free slot nothing reads any more. When every free slot is still held (a consumer keeps
   * tensors built on earlier batches), another slot is allocated rather than overwriting memory a
   * live tensor reads: memory grows only with what the consumer keeps.
   */
  private takeSlot(free: Slot[], caching: boolean): Slot {
    const i = free.findIndex((s) => s.holds.every((h) => h.isDisposed));
    let slot: Slot;
    if (i >= 0) slot = free.splice(i, 1)[0]!;
    else {
      slot = this.newSlot();
      this.slots.push(slot);
    }
    slot.holds = [];
    if (caching) slot.cache ??= new SharedArrayBuffer(this.batchSize * this.image.height * this.image.width * this.image.channels);
    return slot;
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

  /** @internal Stats every file once (size, modification time) for the pixel cache's key. */
  async stampFiles(): Promise<void> {
    this.fileStampMemo = await fileStamp(this.filenames.map((f) => resolve(this.root, f)));
    this.cacheKeyMemo = null;
  }

  /**
   * @internal What this flow's pixel cache must have been built for: the image settings, every
   * path and every file's size and modification time (hashed once, when the flow opens).
   */
  get pixelCacheKey(): CacheKey {
    this.cacheKeyMemo ??= cacheKey(this.image, this.filenames, this.fileStampMemo);
    return this.cacheKeyMemo;
  }

  /** @internal Reads epochs from a finished pixel cache. */
  useCache(index: PixelCacheIndex): void {
    this.cacheIndex = index;
  }

  /** Whether epochs read the pixel cache instead of decoding. */
  get cached(): boolean {
    return this.cacheIndex !== null;
  }

  [Symbol.asyncIterator](): AsyncIterator<ImageBatch> {
    return this.epoch(this.nextEpoch++);
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

  /** The batches of `epoch` as Arrow RecordBatches viewing the batch memory (valid until the next one is requested). */
  async *recordBatches(epoch: number, options: { signal?: AbortSignal } = {}): AsyncGenerator<RecordBatch, void, undefined> {
    for await (const batch of this.epoch(epoch, options)) yield batch.toRecordBatch();
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
    const limit = positiveInt('samples', options.samples, this.samples);
    if (this.dtype !== 'float32') throw invalidOption('dtype', "'float32' for fit()", this.dtype);
    const a = this.augment;
    const identity: AugmentSpec = {
      ...resolveAugment({}),
      rescale: a.keras ? 1 : a.rescale,
      preprocessingFunction: a.keras ? null : a.preprocessingFunction,
      fillMode: a.fillMode,
    };
    const normalization: Normalization = {
      samplewiseCenter: !a.keras && a.samplewiseCenter,
      samplewiseStd: !a.keras && a.samplewiseStdNormalization,
      mean: null,
      std: null,
      zca: null,
    };
    const c = this.image.channels;
    const sum = new Float64Array(c);
    const sq = new Float64Array(c);
    let pixels = 0;
    for await (const batch of this.run(0, { augment: identity, normalization, shuffle: false, limit: Math.min(limit, this.samples) }, options.signal)) {
      const x = batch.images;
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        sum[i % c]! += v;
        sq[i % c]! += v * v;
      }
      pixels += x.length / c;
    }
    const mean = Array.from(sum, (s) => s / pixels);
    const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(0, s / pixels - mean[k]! ** 2)));
    let zca: SharedArrayBuffer | null = null;
    if (a.zcaWhitening) {
      // Keras: the covariance of the samples after featurewise centring / std normalisation.
      const d = this.image.height * this.image.width * c;
      if (d > 4096) throw invalidOption('augment.zcaWhitening', `used with images of at most 4096 values (h·w·c); these have ${d}`, true);
      const sigma = new Float64Array(d * d);
      const x = new Float64Array(d);
      let n = 0;
      for await (const batch of this.run(0, { augment: identity, normalization, shuffle: false, limit: Math.min(limit, this.samples) }, options.signal)) {
        for (let s = 0; s < batch.size; s++) {
          for (let i = 0; i < d; i++) {
            let v = batch.images[s * d + i]!;
            if (a.featurewiseCenter) v -= mean[i % c]!;
            if (a.featurewiseStdNormalization) v /= std[i % c]! + 1e-6;
            x[i] = v;
          }
          for (let i = 0; i < d; i++) {
            const xi = x[i]!;
            for (let j = i; j < d; j++) sigma[i * d + j] = sigma[i * d + j]! + xi * x[j]!;
          }
          n++;
        }
      }
      for (let i = 0; i < d; i++) {
        for (let j = i; j < d; j++) {
          sigma[i * d + j] = sigma[i * d + j]! / n;
          sigma[j * d + i] = sigma[i * d + j]!;
        }
      }
      zca = zcaMatrix(sigma, d, a.zcaEpsilon);
    }
    this.statistics = { mean, std, zca };
    return { mean, std };
  }

  /** `from`: the first batch to produce (resuming work); earlier batches are neither loaded nor yielded. */
  private async *run(epoch: number, settings: RunSettings, signal: AbortSignal | undefined, from = 0): AsyncGenerator<ImageBatch, void, undefined> {
    if (!Number.isInteger(epoch) || epoch < 0) throw invalidOption('epoch', 'a non-negative integer', epoch);
    if (this.closed) throw new PoolClosedError('this flow is closed');
    if (this.active) throw new Error('another epoch of this flow is still being iterated; finish or break it first');
    // A signal aborted before the epoch starts never fires 'abort' again: refuse at once.
    if (signal?.aborted) throw signal.reason ?? new PoolClosedError('iteration aborted');
    this.active = true;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const order = epochOrder(this.samples, this.seed, epoch, settings.shuffle);
    const batches = Math.ceil(settings.limit / this.batchSize);
    const free = [...this.slots];
    const pending = new Map<number, Promise<{ slot: Slot; failures: DecodeFailure[] }>>();
    // The first full pass over the files (a full epoch, not fit()'s sample) also fills the cache.
    const sampleSize = this.image.height * this.image.width * this.image.channels;
    let writer: PixelCacheWriter | null = null;
    // Another flow over the same files (e.g. training, then extraction) may have finished the
    // cache since this one was created.
    if (this.cachePath && !this.cacheIndex) this.cacheIndex = await openPixelCache(this.cachePath, this.pixelCacheKey);
    if (this.cachePath && !this.cacheIndex && settings.limit === this.samples && from === 0) {
      writer = new PixelCacheWriter(this.cachePath, cacheSchema(sampleSize, this.pixelCacheKey));
    }
    this.skippedFiles = [];
    let scheduled = from;
    const schedule = () => {
      while (scheduled < batches && pending.size < this.prefetch) {
        const slot = this.takeSlot(free, writer !== null);
        const promise = this.fill(slot, epoch, scheduled, order, settings, writer !== null, controller.signal);
        promise.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
        pending.set(scheduled++, promise);
      }
    };
    let complete = false;
    try {
      for (let b = from; b < batches; b++) {
        schedule();
        if (controller.signal.aborted) throw controller.signal.reason ?? new PoolClosedError('iteration aborted');
        let result: { slot: Slot; failures: DecodeFailure[] };
        try {
          result = await pending.get(b)!;
        } catch (error) {
          // An abort rejects the in-flight tasks with the pool's own error: report the caller's reason.
          throw controller.signal.aborted ? (controller.signal.reason ?? error) : error;
        }
        const { slot, failures } = result;
        pending.delete(b);
        if (failures.length > 0 && this.onError === 'raise') throw new ImageDecodeError(failures[0]!.path, failures[0]!.reason);
        for (const f of failures) {
          const skipped = { epoch, path: f.path, reason: f.reason };
          this.skippedFiles.push(skipped);
          this.onSkip?.(skipped);
        }
        const size = Math.min(this.batchSize, settings.limit - b * this.batchSize);
        if (writer) {
          const reasons = new Array<string | null>(size).fill(null);
          for (const f of failures) reasons[f.position] = f.reason;
          writer.write(slot.samples.subarray(0, size), new Uint8Array(slot.cache!, 0, size * sampleSize), reasons);
        }
        const batch = this.makeBatch(slot, epoch, b, size, new Set(failures.map((f) => f.position)));
        if (batch.size > 0) yield batch;
        free.push(slot);
      }
      complete = true;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      controller.abort(new PoolClosedError('iteration ended'));
      // Wait until no worker can still write into a slot before the slots are reused.
      await Promise.allSettled(pending.values());
      if (writer && complete) {
        await writer.finish();
        this.cacheIndex = await openPixelCache(writer.path, this.pixelCacheKey);
      } else await writer?.abort();
      this.active = false;
    }
  }

  private sourceFor(samples: number[]): SampleSource {
    const { array } = this.source;
    if (array) return { kind: 'array', data: array.data, dtype: array.dtype };
    if (this.cacheIndex) {
      const { file, offsets, errors } = this.cacheIndex;
      return {
        kind: 'cache',
        file,
        offsets: samples.map((s) => offsets[s]!),
        errors: samples.map((s) => errors.get(s) ?? null),
        paths: samples.map((s) => `${this.root}/${this.filenames[s]!}`),
      };
    }
    return { kind: 'files', root: this.root, paths: samples.map((s) => this.filenames[s]!) };
  }

  private async fill(slot: Slot, epoch: number, batch: number, order: Uint32Array, settings: RunSettings, caching: boolean, signal: AbortSignal) {
    const start = batch * this.batchSize;
    const size = Math.min(this.batchSize, settings.limit - start);
    // Split the batch over the workers so that even one batch in flight uses every core.
    const chunk = Math.max(1, Math.ceil(size / this.pool.workers));
    const tasks: Promise<{ failures: DecodeFailure[] }>[] = [];
    for (let pos = 0; pos < size; pos += chunk) {
      const samples: number[] = [];
      for (let i = pos; i < Math.min(size, pos + chunk); i++) {
        const sample = order[start + i]!;
        samples.push(sample);
        slot.samples[i] = sample;
        slot.classIndex[i] = this.classes[sample]!;
      }
      const task: DecodeTask = {
        source: this.sourceFor(samples),
        samples,
        seed: this.seed,
        epoch,
        image: this.image,
        augment: settings.augment,
        normalization: settings.normalization,
        target: slot.images,
        dtype: this.dtype,
        position: pos,
        attempt: 0,
        ...(caching ? { cacheTarget: slot.cache! } : {}),
        ...(this.jitterMs ? { jitterMs: this.jitterMs } : {}),
        ...(this.crashOnAttempt !== undefined ? { crashOnAttempt: this.crashOnAttempt } : {}),
      };
      tasks.push(this.pool.run(task, signal));
    }
    const results = await Promise.all(tasks);
    return { slot, failures: results.flatMap((r) => r.failures).sort((a, b) => a.position - b.position) };
  }

  private makeBatch(slot: Slot, epoch: number, index: number, count: number, failed: Set<number>): ImageBatch {
    const { height, width, channels } = this.image;
    const sampleSize = height * width * channels;
    let size = count;
    if (failed.size > 0) {
      // Compact the good samples to the front of the slot, keeping their order.
      let write = 0;
      for (let read = 0; read < count; read++) {
        if (failed.has(read)) continue;
        if (write !== read) {
          slot.view.copyWithin(write * sampleSize, read * sampleSize, (read + 1) * sampleSize);
          slot.classIndex[write] = slot.classIndex[read]!;
          slot.samples[write] = slot.samples[read]!;
        }
        write++;
      }
      size = write;
    }
    const images = slot.view.subarray(0, size * sampleSize);
    const classIndex = slot.classIndex.subarray(0, size);
    const samples = slot.samples.subarray(0, size);
    const paths = this.source.array ? Array.from(samples, (s) => `#${s}`) : Array.from(samples, (s) => this.filenames[s]!);
    const numClasses = this.classNames.length;
    const { classMode, schema } = this;
    const targets = this.source.targets ?? [];
    const widths = this.source.outputWidths ?? [];
    const gather = (k: number) => {
      const w = widths[k]!;
      const out = new Float32Array(size * w);
      for (let i = 0; i < size; i++) out.set(targets[k]!.subarray(samples[i]! * w, (samples[i]! + 1) * w), i * w);
      return out;
    };
    const labels = (): Float32Array | Uint8Array | undefined => {
      switch (classMode) {
        case 'categorical': {
          const out = new Float32Array(size * numClasses);
          for (let i = 0; i < size; i++) out[i * numClasses + classIndex[i]!] = 1;
          return out;
        }
        case 'binary':
        case 'sparse':
          return Float32Array.from(classIndex);
        case 'raw':
          return gather(0);
        case 'input':
          return images;
        case 'multi_output':
          throw new Error("classMode 'multi_output' has one label array per output: use batch.outputs()");
        default:
          return undefined;
      }
    };
    return {
      epoch,
      index,
      size,
      shape: [size, height, width, channels],
      images,
      classIndex,
      samples,
      paths,
      labels,
      outputs() {
        if (classMode === 'multi_output') return widths.map((_, k) => gather(k));
        const y = labels();
        return y ? [y] : [];
      },
      toRecordBatch() {
        return imageRecordBatch(schema, images, classIndex, paths);
      },
      retain(holder) {
        slot.holds.push(holder);
      },
    };
  }

  /** Ends the flow and, unless it was given a shared pool, every worker. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.ownsPool) await this.pool.close();
  }
}

/** The samples of `source` in shard `shard` (all of them without one). */
function shardOf(source: FlowSource, shard: BaseFlowOptions['shard']): FlowSource {
  if (shard === undefined) return source;
  const { index, count } = shard ?? {};
  if (!Number.isInteger(count) || count! < 1 || !Number.isInteger(index) || index! < 0 || index! >= count!) {
    throw invalidOption('shard', '{ index, count } with integers 0 ≤ index < count', shard);
  }
  if (source.array) throw invalidOption('shard', 'unset for in-memory arrays (slice the array instead)', shard);
  const keep = source.manifest.paths.map((_, i) => i).filter((i) => i % count! === index);
  const { manifest } = source;
  return {
    ...source,
    manifest: { ...manifest, paths: keep.map((i) => manifest.paths[i]!), labels: Int32Array.from(keep, (i) => manifest.labels[i]!) },
    ...(source.targets
      ? {
          targets: source.targets.map((t, k) => {
            const w = source.outputWidths![k]!;
            const out = new Float32Array(keep.length * w);
            for (const [j, i] of keep.entries()) out.set(t.subarray(i * w, (i + 1) * w), j * w);
            return out;
          }),
        }
      : {}),
  };
}

function checkOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'an object', options);
}

async function withCache(manifest: Manifest, options: FileFlowOptions, rest: Omit<FlowSource, 'manifest'> = {}): Promise<ImageFlow> {
  const flow = new ImageFlow({ manifest, ...rest }, options);
  if (flow.cachePath) {
    const index = await flow
      .stampFiles()
      .then(() => openPixelCache(flow.cachePath!, flow.pixelCacheKey))
      .catch(async (error) => {
      await flow.close();
      throw error;
    });
    if (index) flow.useCache(index);
  }
  return flow;
}

/**
 * Keras's `flow_from_directory`: one class per subdirectory of `directory`.
 *
 * @example
 * const flow = await flowFromDirectory('data/train', {
 *   targetSize: [224, 224], batchSize: 32, seed: 1,
 *   augment: { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true },
 * });
 * for await (const batch of flow) console.log(batch.shape);
 * await flow.close();
 */
export async function flowFromDirectory(directory: string, options: FlowOptions = {}): Promise<ImageFlow> {
  if (typeof directory !== 'string' || directory.length === 0) throw invalidOption('directory', 'a non-empty path', directory);
  checkOptions(options);
  return withCache(await listDirectory(directory, options), options);
}

/**
 * Keras's `flow_from_dataframe` over a CSV or Arrow manifest of paths and labels.
 *
 * @example
 * const flow = await flowFromManifest('data/labels.csv', {
 *   xCol: 'file', yCol: ['x', 'y'], classMode: 'raw', targetSize: [128, 128],
 * });
 */
export async function flowFromManifest(file: string, options: FileFlowOptions & ManifestOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  const m = await readManifest(file, options);
  const flow = await withCache(m, options, m.targets.length > 0 ? { targets: m.targets, outputWidths: m.outputWidths } : {});
  flow.excludedRows = m.excludedRows;
  return flow;
}

/**
 * A flow over a list of image files (paths absolute or relative to the working directory), in the
 * given order, without labels — for prediction.
 *
 * @example
 * const flow = await flowFromFiles(['a.jpg', 'b.png'], { targetSize: [224, 224], shuffle: false });
 */
export async function flowFromFiles(files: string[], options: FileFlowOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  if (!Array.isArray(files) || files.length === 0 || files.some((f) => typeof f !== 'string' || f.length === 0)) {
    throw invalidOption('files', 'a non-empty array of file paths', files);
  }
  const manifest: Manifest = {
    root: '',
    classNames: [],
    classIndices: {},
    paths: files.map((f) => resolve(f).slice(1)), // relative to the filesystem root: root + '/' + path
    labels: new Int32Array(files.length).fill(-1),
  };
  return withCache(manifest, { shuffle: false, ...options, classMode: 'none' });
}

/** An in-memory dataset for flowFromArray: NHWC pixels in 0–255 units. */
export interface ArrayInput {
  data: Uint8Array | Float32Array;
  /** [samples, height, width, channels] with channels 1, 3 or 4. */
  shape: [number, number, number, number];
}

/**
 * Keras's `flow(x, y)`: batches from images already in memory, augmented by the worker pool. The
 * pixels are shared with the workers without copying when `x.data` views a SharedArrayBuffer, and
 * copied into one once otherwise.
 *
 * @example
 * const flow = flowFromArray({ data: pixels, shape: [60000, 28, 28, 1] }, { y: labels, batchSize: 128 });
 */
export function flowFromArray(
  x: ArrayInput,
  options: BaseFlowOptions & {
    /** Class index of each sample (Keras's `y`). */
    y?: ArrayLike<number>;
    /** Names of the classes, in index order. Default '0', '1', …. */
    classNames?: string[];
    /** Numeric targets, n × k values (classMode 'raw'). */
    targets?: Float32Array;
  } = {},
): ImageFlow {
  checkOptions(options);
  if (typeof x !== 'object' || x === null || !(x.data instanceof Uint8Array || x.data instanceof Float32Array)) {
    throw invalidOption('x.data', 'a Uint8Array or Float32Array of NHWC pixels', typeof x?.data);
  }
  const shape = x.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((v) => Number.isInteger(v) && v >= 1) || ![1, 3, 4].includes(shape[3])) {
    throw invalidOption('x.shape', '[samples, height, width, channels] with channels 1, 3 or 4', shape);
  }
  const [n, height, width, channels] = shape;
  if (x.data.length !== n * height * width * channels) throw invalidOption('x.data', `${n * height * width * channels} values for shape [${shape.join(', ')}]`, `${x.data.length} values`);
  const dtype: PixelType = x.data instanceof Uint8Array ? 'uint8' : 'float32';
  let data: SharedArrayBuffer;
  if (x.data.buffer instanceof SharedArrayBuffer && x.data.byteOffset === 0) data = x.data.buffer;
  else {
    data = new SharedArrayBuffer(x.data.byteLength);
    (dtype === 'uint8' ? new Uint8Array(data) : new Float32Array(data)).set(x.data);
  }
  const labels = new Int32Array(n).fill(-1);
  let classNames = options.classNames ?? [];
  if (options.y !== undefined) {
    if (options.y.length !== n) throw invalidOption('y', `${n} class indices (one per sample)`, `${options.y.length} values`);
    let max = -1;
    for (let i = 0; i < n; i++) {
      const c = options.y[i]!;
      if (!Number.isInteger(c) || c < 0) throw invalidOption(`y[${i}]`, 'a non-negative integer class index', c);
      labels[i] = c;
      max = Math.max(max, c);
    }
    if (classNames.length === 0) classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
    if (max >= classNames.length) throw invalidOption('classNames', `at least ${max + 1} names`, classNames);
  }
  let targets: Float32Array[] | undefined;
  let outputWidths: number[] | undefined;
  if (options.targets !== undefined) {
    if (!(options.targets instanceof Float32Array) || options.targets.length % n !== 0 || options.targets.length === 0) {
      throw invalidOption('targets', `a Float32Array of ${n} × k values`, options.targets?.length);
    }
    targets = [options.targets];
    outputWidths = [options.targets.length / n];
  }
  const classMode = options.classMode ?? (targets ? 'raw' : options.y !== undefined ? 'categorical' : 'none');
  const manifest: Manifest = {
    root: '(memory)',
    classNames,
    classIndices: Object.fromEntries(classNames.map((c, i) => [c, i])),
    paths: Array.from({ length: n }, (_, i) => `#${i}`),
    labels,
  };
  return new ImageFlow(
    { manifest, array: { data, dtype, height, width, channels: channels as 1 | 3 | 4 }, ...(targets ? { targets, outputWidths: outputWidths! } : {}) },
    { ...options, classMode },
  );
}
