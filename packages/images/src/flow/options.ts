/**
 * A flow's options, and their resolution into one checked spec (as resolveAugment does for the
 * augmentation): every option is validated here, up front, with a message naming it.
 */
import { randomInt } from 'node:crypto';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import {
  CHANNELS,
  type ColorMode,
  COLOR_MODES,
  positiveInt as commonPositiveInt,
  INTERPOLATION_CHOICES,
  INTERPOLATIONS,
  type Interpolation,
  is,
} from '@featherstack/common';
import { type AugmentOptions, type AugmentSpec, resolveAugment } from '../augment.js';
import { type CacheEncoding, type CacheFormat, checkCacheEncoding, parseCacheFormat, RAW_CACHE } from '../cache.js';
import type { ClassMode } from '../batch/batch.js';
import { ImageOptionError, invalidOption } from '../errors.js';
import { ImagePool, resolveWorkers } from '../pool/pool.js';
import type { ImageSpec, PixelType } from '../image-spec.js';
import type { DirectoryListingOptions } from '../sources/directory.js';
import type { FlowSource, Shard } from './order.js';

const CLASS_MODES: readonly ClassMode[] = ['categorical', 'binary', 'sparse', 'input', 'none', 'raw', 'multi_output'];

/** Options shared by every kind of flow. */
/** What a flow does with a file that cannot be decoded: raise names it, skip reports it and leaves it out. */
export const ON_ERROR_MODES = ['raise', 'skip'] as const;
export type OnError = (typeof ON_ERROR_MODES)[number];

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
  onError?: OnError;
  /** Called for every file skipped under onError: 'skip'. */
  onSkip?: (file: SkippedFile) => void;
  /**
   * Only samples i with i mod count = index: `{ index, count }` lets several processes or machines
   * work on disjoint parts of one dataset (e.g. sharded feature extraction).
   */
  shard?: Shard;
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
   * default reproduces exactly. Default false.
   */
  fastDecode?: boolean;
  /**
   * Path of a pixel cache (Arrow IPC). The first epoch writes decoded, resized uint8 pixels there;
   * later epochs, and later flows with the same files and image settings, read them instead of
   * decoding. A cache built for other files or settings is refused with an error naming it. An
   * existing directory is a sharded cache (`pixels-<n>.arrow` files built by featherstack workers,
   * each for the next rows of the dataset), read as one and never written.
   */
  cache?: string;
  /**
   * How the pixel cache stores each image at the flow's size: `raw` uint8 pixels (default, the
   * fastest to read), `png` (lossless: the same pixels in a fraction of the bytes, decoded as read)
   * or `jpeg[:Q]` (lossy, quality Q, default 90: the smallest; training sees JPEG's pixels).
   */
  cacheFormat?: CacheFormat;
  /**
   * Bytes a pixel cache this flow would write may take on disk. Default: half the space free on the
   * cache's filesystem when the flow is made (statfs). A cache that would need more is not written
   * (epochs decode instead) and `flow.cachePlan` says why: never a full disk halfway through an epoch.
   */
  cacheBudget?: number;
}

export interface FlowOptions extends FileFlowOptions, DirectoryListingOptions {}

/** A file left out of an epoch under onError: 'skip'. */
export interface SkippedFile {
  epoch: number;
  /** The file's absolute path, to open or fix it. */
  path: string;
  /** The same file as batches' `paths` and `flow.filenames` name it (relative to the directory). */
  filename: string;
  reason: string;
}

/** Every option of a flow, checked and defaulted. */
export interface FlowSpec {
  image: ImageSpec;
  augment: AugmentSpec;
  classMode: ClassMode;
  batchSize: number;
  prefetch: number;
  seed: number;
  shuffle: boolean;
  dtype: PixelType;
  onError: OnError;
  onSkip: ((file: SkippedFile) => void) | undefined;
  /** Absolute path of the pixel cache, or null. */
  cachePath: string | null;
  cacheEncoding: CacheEncoding;
  workers: number;
  /** The shared pool, or undefined when the flow starts (and closes) its own. */
  pool: ImagePool | undefined;
}

function range(name: string, value: unknown, fallback: [number, number], ok: (lo: number, hi: number) => boolean, expected: string): [number, number] {
  if (value === undefined) return fallback;
  if (!is.pair(value, (v) => typeof v === 'number') || !ok(value[0], value[1])) throw invalidOption(name, expected, value);
  return [value[0], value[1]];
}

function resolveCrop(value: FileFlowOptions['randomCrop']): ImageSpec['randomCrop'] {
  if (value === undefined || value === false) return null;
  if (value !== true && !is.object(value)) throw invalidOption('randomCrop', 'a boolean or { scale, ratio }', value);
  const o = value === true ? {} : value;
  return {
    scale: range('randomCrop.scale', o.scale, [0.08, 1], (lo, hi) => lo > 0 && hi <= 1 && lo <= hi, '[lo, hi] with 0 < lo ≤ hi ≤ 1'),
    ratio: range('randomCrop.ratio', o.ratio, [3 / 4, 4 / 3], (lo, hi) => lo > 0 && lo <= hi && Number.isFinite(hi), '[lo, hi] with 0 < lo ≤ hi'),
  };
}

function flag(name: string, value: unknown): boolean {
  if (value !== undefined && !is.bool(value)) throw invalidOption(name, 'a boolean', value);
  return value ?? false;
}

const positiveInt = (name: string, value: unknown, fallback: number) => commonPositiveInt(name, value, fallback, ImageOptionError);

/** The image settings: the array's own for in-memory data, the options' otherwise. */
function resolveImage(source: FlowSource, options: FlowOptions): ImageSpec {
  let height: number;
  let width: number;
  let colorMode: ColorMode;
  if (source.array) {
    ({ height, width } = source.array);
    colorMode = COLOR_MODES.find((m) => CHANNELS[m] === source.array!.channels)!;
  } else {
    // Validated before destructuring: a number or string here must get the option's message, not a TypeError.
    const targetSize: unknown = options.targetSize ?? [256, 256];
    if (!is.pair(targetSize, is.positiveInteger)) throw invalidOption('targetSize', '[height, width] of positive integers', options.targetSize);
    [height, width] = targetSize;
    colorMode = options.colorMode ?? 'rgb';
    if (!is.oneOf(colorMode, COLOR_MODES)) throw invalidOption('colorMode', "'grayscale', 'rgb' or 'rgba'", colorMode);
  }
  const interpolation = options.interpolation ?? 'nearest';
  if (!is.oneOf(interpolation, INTERPOLATIONS)) throw invalidOption('interpolation', INTERPOLATION_CHOICES, interpolation);
  return {
    height,
    width,
    channels: CHANNELS[colorMode],
    colorMode,
    interpolation,
    keepAspectRatio: flag('keepAspectRatio', options.keepAspectRatio),
    pixelLimit: positiveInt('pixelLimit', options.pixelLimit, 16384 * 16384),
    randomCrop: resolveCrop(options.randomCrop),
    fastDecode: flag('fastDecode', options.fastDecode),
  };
}

function resolveClassMode(source: FlowSource, value: unknown): ClassMode {
  const hasTargets = (source.targets?.length ?? 0) > 0;
  const classMode = value ?? (hasTargets ? 'raw' : 'categorical');
  if (!is.oneOf(classMode, CLASS_MODES))
    throw invalidOption('classMode', "'categorical', 'binary', 'sparse', 'input', 'none', 'raw' or 'multi_output'", classMode);
  if ((classMode === 'raw' || classMode === 'multi_output') !== hasTargets && classMode !== 'input' && classMode !== 'none') {
    throw invalidOption(
      'classMode',
      hasTargets
        ? "'raw' or 'multi_output' for numeric targets"
        : "a class-based mode: this source has no numeric targets ('raw' and 'multi_output' need a manifest with numeric label columns)",
      classMode,
    );
  }
  if (classMode === 'binary' && source.manifest.classNames.length !== 2) {
    throw invalidOption('classMode', `'binary' only with exactly 2 classes (found ${source.manifest.classNames.length})`, classMode);
  }
  return classMode;
}

/** Checks and defaults every option of a flow over `source`. */
export function resolveFlowOptions(source: FlowSource, options: FlowOptions): FlowSpec {
  const image = resolveImage(source, options);
  const classMode = resolveClassMode(source, options.classMode);
  const seed = options.seed ?? randomInt(2 ** 31);
  if (!is.integer(seed)) throw invalidOption('seed', 'an integer', seed);
  if (options.pool !== undefined && !(options.pool instanceof ImagePool))
    throw invalidOption('pool', 'an ImagePool from createImagePool()', typeof options.pool);
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'uint8') throw invalidOption('dtype', "'float32' or 'uint8'", dtype);
  const workers = options.pool ? options.pool.workers : resolveWorkers(options.workers);
  const onError = options.onError ?? 'raise';
  if (!is.oneOf(onError, ON_ERROR_MODES)) throw invalidOption('onError', "'raise' or 'skip'", options.onError);
  if (options.onSkip !== undefined && typeof options.onSkip !== 'function') throw invalidOption('onSkip', 'a function', typeof options.onSkip);
  const augment = resolveAugment(options.augment ?? {});
  const a = augment;
  if (
    dtype === 'uint8' &&
    (a.rescale !== 1 ||
      a.samplewiseCenter ||
      a.samplewiseStdNormalization ||
      a.featurewiseCenter ||
      a.featurewiseStdNormalization ||
      a.zcaWhitening ||
      a.preprocessingFunction ||
      a.preprocess !== 'none')
  ) {
    throw invalidOption('dtype', "'float32' when rescale, normalisation or a preprocessing function is used", dtype);
  }
  if ((a.preprocess === 'caffe' || a.preprocess === 'torch') && image.channels !== 3)
    throw invalidOption('augment.preprocess', `'tf' or 'none' for ${image.channels}-channel images ('${a.preprocess}' needs rgb)`, a.preprocess);
  if (options.cache !== undefined && !is.string(options.cache)) throw invalidOption('cache', 'a file path', options.cache);
  if (options.cacheBudget !== undefined && !(typeof options.cacheBudget === 'number' && options.cacheBudget > 0))
    throw invalidOption('cacheBudget', 'a positive number of bytes', options.cacheBudget);
  if (options.cache !== undefined && source.array) throw invalidOption('cache', 'unset for in-memory arrays (they are decoded already)', options.cache);
  if (options.cache !== undefined && image.randomCrop)
    throw invalidOption('cache', 'unset with randomCrop (crops are cut from the full-size image)', options.cache);
  const cacheEncoding = options.cacheFormat === undefined ? RAW_CACHE : parseCacheFormat(options.cacheFormat);
  checkCacheEncoding(cacheEncoding, image.channels);
  const spec: FlowSpec = {
    image,
    augment,
    classMode,
    batchSize: positiveInt('batchSize', options.batchSize, 32),
    prefetch: positiveInt('prefetch', options.prefetch, Math.max(2, workers)),
    seed,
    shuffle: flag('shuffle', options.shuffle ?? true),
    dtype,
    onError,
    onSkip: options.onSkip,
    cachePath: options.cache !== undefined ? resolve(options.cache) : null,
    cacheEncoding,
    workers,
    pool: options.pool,
  };
  checkMemory(spec);
  return spec;
}

/**
 * Slots are allocated up front: memory is (prefetch + 1) × batch bytes for the flow's life. Refused
 * by name when that cannot fit in half of this machine's memory (an allocation failure names nothing).
 */
function checkMemory({ batchSize, prefetch, image, dtype }: FlowSpec): void {
  const { height, width, channels } = image;
  const slotBytes = batchSize * height * width * channels * (dtype === 'uint8' ? 1 : 4);
  if (slotBytes * (prefetch + 1) <= totalmem() / 2) return;
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  throw invalidOption(
    'batchSize',
    `small enough that ${prefetch + 1} batches of ${height}×${width}×${channels} ${dtype} images fit in half of this machine's ${gib(totalmem())} (${gib(slotBytes * (prefetch + 1))} asked for; lower batchSize or targetSize)`,
    batchSize,
  );
}
