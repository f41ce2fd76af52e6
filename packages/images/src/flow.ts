/**
 * Flows: re-iterable datasets of image batches (Keras's DirectoryIterator and friends). Each call to
 * `epoch()` returns a single-use async iterator; `for await (const batch of flow)` runs the next
 * epoch.
 *
 * Memory: a flow allocates `prefetch + 1` batch slots once, up front, as SharedArrayBuffers. Workers
 * write pixels straight into a slot; the consumer reads the slot through typed-array and Arrow
 * views. A yielded batch's memory stays valid until the consumer asks for the next batch (or ends
 * the loop); then the slot is recycled. Copy what must outlive that (`batch.images.slice()`).
 */
import { randomInt } from 'node:crypto';
import type { RecordBatch, Schema } from 'apache-arrow';
import { imageBatchSchema, imageRecordBatch } from './arrow.js';
import { type AugmentOptions, type AugmentSpec, resolveAugment } from './augment.js';
import { DecodePool, resolveWorkers } from './engine.js';
import { ImageDecodeError, invalidOption, PoolClosedError } from './errors.js';
import type { ColorMode, DecodeFailure, DecodeTask, ImageSpec, Interpolation } from './protocol.js';
import { epochOrder } from './rng.js';
import { type DirectoryListingOptions, listDirectory, type Manifest } from './sources/directory.js';

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

export type ClassMode = 'categorical' | 'binary' | 'sparse' | 'input' | 'none';

export interface FlowOptions extends DirectoryListingOptions {
  /** [height, width] every image is resized to. Default [256, 256] (Keras's default). */
  targetSize?: [number, number];
  colorMode?: ColorMode;
  classMode?: ClassMode;
  batchSize?: number;
  shuffle?: boolean;
  /** Seed for order and augmentation. Default: a random seed, exposed as `flow.seed`. */
  seed?: number;
  /** Resize filter. Default 'nearest' (Keras's default). */
  interpolation?: Interpolation;
  /** Resize to cover the target and centre-crop instead of stretching. */
  keepAspectRatio?: boolean;
  augment?: AugmentOptions;
  /** Decode workers. Default: every core. Ignored when `pool` is given. */
  workers?: number;
  /** A pool shared with other flows (e.g. train and validation); the flow then does not close it. */
  pool?: ImagePool;
  /** Batches decoded ahead of the consumer. Default: max(2, workers). */
  prefetch?: number;
  /** Largest accepted image, in pixels (width × height). Default 16384². */
  pixelLimit?: number;
  /**
   * What an image that cannot be decoded does: 'raise' (default) ends the epoch with an
   * ImageDecodeError naming the file; 'skip' delivers every good image (batches holding a bad one
   * are shorter), reports each skipped file through `onSkip` as it happens and lists them in
   * `flow.skippedFiles` when the epoch ends.
   */
  onError?: 'raise' | 'skip';
  /** Called for every file skipped under onError: 'skip'. */
  onSkip?: (file: SkippedFile) => void;
  /** Test hook: random delay of up to n ms per task, to reorder worker completions. @internal */
  jitterMs?: number;
}

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
  /** NHWC float32 pixels. */
  images: Float32Array;
  /** Class index of each sample. */
  classIndex: Int32Array;
  /** Paths relative to the flow's root. */
  paths: string[];
  /** Labels in the flow's class mode (one-hot for categorical); undefined for 'input' and 'none'. */
  labels(): Float32Array | undefined;
  /** The batch as an Arrow RecordBatch whose columns view the same memory. */
  toRecordBatch(): RecordBatch;
}

interface Slot {
  buffer: SharedArrayBuffer;
  images: Float32Array;
  classIndex: Int32Array;
}

function positiveInt(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidOption(name, 'a positive integer', value);
  return value;
}

const CHANNELS: Record<ColorMode, 1 | 3 | 4> = { grayscale: 1, rgb: 3, rgba: 4 };

/** A re-iterable dataset of augmented image batches decoded by a worker pool. */
export class ImageFlow implements AsyncIterable<ImageBatch> {
  readonly root: string;
  readonly classNames: string[];
  readonly classIndices: Record<string, number>;
  /** Paths relative to `root`, in dataset order. */
  readonly filenames: string[];
  /** Class index of every sample, in dataset order. */
  readonly classes: Int32Array;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly classMode: ClassMode;
  readonly image: ImageSpec;
  readonly augment: AugmentSpec;
  readonly schema: Schema;
  private readonly pool: DecodePool;
  private readonly ownsPool: boolean;
  private readonly prefetch: number;
  private readonly jitterMs: number;
  private readonly slots: Slot[];
  /** Files skipped in the most recent epoch (onError: 'skip'); complete when that epoch ends. */
  skippedFiles: SkippedFile[] = [];
  private readonly onError: 'raise' | 'skip';
  private readonly onSkip: ((file: SkippedFile) => void) | undefined;
  private nextEpoch = 0;
  private active = false;
  private closed = false;

  /** @internal Use flowFromDirectory(). */
  constructor(manifest: Manifest, options: FlowOptions) {
    // Validated before destructuring: a number or string here must get the option's message, not a TypeError.
    const targetSize: unknown = options.targetSize ?? [256, 256];
    if (!Array.isArray(targetSize) || targetSize.length !== 2 || !targetSize.every((v) => Number.isInteger(v) && v >= 1)) {
      throw invalidOption('targetSize', '[height, width] of positive integers', options.targetSize);
    }
    const [height, width] = targetSize as [number, number];
    const colorMode = options.colorMode ?? 'rgb';
    if (!(colorMode in CHANNELS)) throw invalidOption('colorMode', "'grayscale', 'rgb' or 'rgba'", colorMode);
    const classMode = options.classMode ?? 'categorical';
    if (!['categorical', 'binary', 'sparse', 'input', 'none'].includes(classMode)) {
      throw invalidOption('classMode', "'categorical', 'binary', 'sparse', 'input' or 'none'", classMode);
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
    const workers = options.pool ? options.pool.workers : resolveWorkers(options.workers);
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
    this.jitterMs = options.jitterMs ?? 0;
    this.onError = options.onError ?? 'raise';
    if (this.onError !== 'raise' && this.onError !== 'skip') throw invalidOption('onError', "'raise' or 'skip'", options.onError);
    if (options.onSkip !== undefined && typeof options.onSkip !== 'function') throw invalidOption('onSkip', 'a function', typeof options.onSkip);
    this.onSkip = options.onSkip;
    this.image = {
      height,
      width,
      channels: CHANNELS[colorMode],
      colorMode,
      interpolation,
      keepAspectRatio: options.keepAspectRatio ?? false,
      pixelLimit: positiveInt('pixelLimit', options.pixelLimit, 16384 * 16384),
    };
    this.augment = resolveAugment(options.augment ?? {});
    this.schema = imageBatchSchema(height * width * this.image.channels, new Map([['class_names', JSON.stringify(this.classNames)]]));
    // Every slot is allocated once, here: memory is (prefetch + 1) × batch bytes for the flow's life.
    const sampleSize = height * width * this.image.channels;
    this.slots = Array.from({ length: this.prefetch + 1 }, () => {
      const imageBytes = this.batchSize * sampleSize * 4;
      const buffer = new SharedArrayBuffer(imageBytes + this.batchSize * 4);
      return {
        buffer,
        images: new Float32Array(buffer, 0, this.batchSize * sampleSize),
        classIndex: new Int32Array(buffer, imageBytes, this.batchSize),
      };
    });
    this.ownsPool = options.pool === undefined;
    this.pool = options.pool ? poolOf(options.pool) : new DecodePool(workers);
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
  async *epoch(epoch: number, options: { signal?: AbortSignal } = {}): AsyncGenerator<ImageBatch, void, undefined> {
    if (!Number.isInteger(epoch) || epoch < 0) throw invalidOption('epoch', 'a non-negative integer', epoch);
    if (this.closed) throw new PoolClosedError('this flow is closed');
    if (this.active) throw new Error('another epoch of this flow is still being iterated; finish or break it first');
    this.active = true;
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const order = epochOrder(this.samples, this.seed, epoch, this.shuffle);
    const free = [...this.slots];
    const pending = new Map<number, Promise<{ slot: Slot; failures: DecodeFailure[] }>>();
    this.skippedFiles = [];
    let scheduled = 0;
    const schedule = () => {
      while (free.length > 0 && scheduled < this.length && pending.size < this.prefetch) {
        const slot = free.pop()!;
        const promise = this.fill(slot, epoch, scheduled, order, controller.signal);
        promise.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
        pending.set(scheduled++, promise);
      }
    };
    try {
      for (let b = 0; b < this.length; b++) {
        schedule();
        if (controller.signal.aborted) throw controller.signal.reason ?? new PoolClosedError('iteration aborted');
        const { slot, failures } = await pending.get(b)!;
        pending.delete(b);
        if (failures.length > 0 && this.onError === 'raise') throw new ImageDecodeError(failures[0]!.path, failures[0]!.reason);
        for (const f of failures) {
          const skipped = { epoch, path: f.path, reason: f.reason };
          this.skippedFiles.push(skipped);
          this.onSkip?.(skipped);
        }
        const batch = this.makeBatch(slot, epoch, b, order, new Set(failures.map((f) => f.position)));
        if (batch.size > 0) yield batch;
        free.push(slot);
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      controller.abort(new PoolClosedError('iteration ended'));
      // Wait until no worker can still write into a slot before the slots are reused.
      await Promise.allSettled(pending.values());
      this.active = false;
    }
  }

  private async fill(slot: Slot, epoch: number, batch: number, order: Uint32Array, signal: AbortSignal) {
    const start = batch * this.batchSize;
    const size = Math.min(this.batchSize, this.samples - start);
    // Split the batch over the workers so that even one batch in flight uses every core.
    const chunk = Math.max(1, Math.ceil(size / this.pool.workers));
    const tasks: Promise<{ failures: DecodeFailure[] }>[] = [];
    for (let pos = 0; pos < size; pos += chunk) {
      const samples: number[] = [];
      const paths: string[] = [];
      for (let i = pos; i < Math.min(size, pos + chunk); i++) {
        const sample = order[start + i]!;
        samples.push(sample);
        paths.push(this.filenames[sample]!);
        slot.classIndex[i] = this.classes[sample]!;
      }
      const task: DecodeTask = {
        root: this.root,
        paths,
        samples,
        seed: this.seed,
        epoch,
        image: this.image,
        augment: this.augment,
        target: slot.buffer,
        byteOffset: 0,
        position: pos,
        ...(this.jitterMs ? { jitterMs: this.jitterMs } : {}),
      };
      tasks.push(this.pool.run(task, signal));
    }
    const results = await Promise.all(tasks);
    return { slot, failures: results.flatMap((r) => r.failures).sort((a, b) => a.position - b.position) };
  }

  private makeBatch(slot: Slot, epoch: number, index: number, order: Uint32Array, failed: Set<number>): ImageBatch {
    const start = index * this.batchSize;
    const { height, width, channels } = this.image;
    const sampleSize = height * width * channels;
    let paths = Array.from(order.subarray(start, start + Math.min(this.batchSize, this.samples - start)), (sample) => this.filenames[sample]!);
    if (failed.size > 0) {
      // Compact the good samples to the front of the slot, keeping their order.
      let write = 0;
      for (let read = 0; read < paths.length; read++) {
        if (failed.has(read)) continue;
        if (write !== read) {
          slot.images.copyWithin(write * sampleSize, read * sampleSize, (read + 1) * sampleSize);
          slot.classIndex[write] = slot.classIndex[read]!;
        }
        write++;
      }
      paths = paths.filter((_, i) => !failed.has(i));
    }
    const size = paths.length;
    const images = slot.images.subarray(0, size * sampleSize);
    const classIndex = slot.classIndex.subarray(0, size);
    const numClasses = this.classNames.length;
    const classMode = this.classMode;
    const schema = this.schema;
    return {
      epoch,
      index,
      size,
      shape: [size, height, width, channels],
      images,
      classIndex,
      paths,
      labels() {
        if (classMode === 'categorical') {
          const out = new Float32Array(size * numClasses);
          for (let i = 0; i < size; i++) out[i * numClasses + classIndex[i]!] = 1;
          return out;
        }
        if (classMode === 'binary' || classMode === 'sparse') return Float32Array.from(classIndex);
        return undefined;
      },
      toRecordBatch() {
        return imageRecordBatch(schema, images, classIndex, paths);
      },
    };
  }

  /** Ends the flow and, unless it was given a shared pool, every worker. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.ownsPool) await this.pool.close();
  }
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
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'an object', options);
  const manifest = await listDirectory(directory, options);
  return new ImageFlow(manifest, options);
}
