/**
 * A batch as the consumer sees it: views of its slot, compacted when samples failed to load, with
 * labels encoded in the flow's class mode.
 */
import type { RecordBatch, Schema } from 'apache-arrow';
import { imageRecordBatch } from './arrow.js';
import type { Slot } from './slot.js';

export type ClassMode = 'categorical' | 'binary' | 'sparse' | 'input' | 'none' | 'raw' | 'multi_output';

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

/** What a batch needs to know of its flow. */
export interface BatchLayout {
  height: number;
  width: number;
  channels: number;
  classMode: ClassMode;
  numClasses: number;
  /** Numeric targets (raw, multi_output), one array per output, and each output's width. */
  targets: Float32Array[];
  outputWidths: number[];
  schema: Schema;
  pathOf(sample: number): string;
}

/** Moves the samples not in `failed` to the front of the slot, keeping their order; returns how many. */
function compact(slot: Slot, count: number, failed: Set<number>, sampleSize: number): number {
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
  return write;
}

export function makeBatch(slot: Slot, layout: BatchLayout, epoch: number, index: number, count: number, failed: Set<number>): ImageBatch {
  const { height, width, channels, classMode, numClasses, targets, outputWidths: widths, schema } = layout;
  const sampleSize = height * width * channels;
  const size = failed.size > 0 ? compact(slot, count, failed, sampleSize) : count;
  const images = slot.view.subarray(0, size * sampleSize);
  const classIndex = slot.classIndex.subarray(0, size);
  const samples = slot.samples.subarray(0, size);
  const paths = Array.from(samples, (s) => layout.pathOf(s));
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
