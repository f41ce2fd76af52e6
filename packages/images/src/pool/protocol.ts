/**
 * The main-thread ↔ worker protocol: plain data only, so it crosses the thread boundary as a
 * structured clone. Destination slots and in-memory datasets are SharedArrayBuffers, which are
 * shared, not copied.
 * @internal
 */
import type { AugmentSpec } from '../augment.js';
import type { CacheEncoding } from '../cache.js';

import type { ImageSpec, PixelType } from '../image-spec.js';

export type { ColorMode, Interpolation } from '@featherstack/common';
export type { ImageSpec, PixelType };

/** Per-sample standardisation after augmentation (Keras's `standardize`, minus ZCA). */
export interface Normalization {
  samplewiseCenter: boolean;
  samplewiseStd: boolean;
  /** Per-channel mean and std from `fit()`; null when not fitted or not asked for. */
  mean: number[] | null;
  std: number[] | null;
  /** ZCA whitening matrix (float32, D×D, shared) or null. */
  zca: SharedArrayBuffer | null;
}

/** Where a task's samples come from. */
export type SampleSource =
  /** Image files: `paths[i]` (relative to root) holds the task's i-th sample. */
  | { kind: 'files'; root: string; paths: string[] }
  /** An in-memory dataset [n, h, w, c] at the flow's size, indexed by dataset sample. */
  | { kind: 'array'; data: SharedArrayBuffer; dtype: PixelType }
  /**
   * A pixel cache: the i-th sample's uint8 pixels start at byte `offsets[i]` of `file`, with CRC-32
   * `crcs[i]`; an `errors[i]` replays a failure. An encoded cache gives each row's byte length and
   * its encoding: the row is an image at the flow's size, decoded as read.
   */
  | {
      kind: 'cache';
      file: string;
      files?: string[];
      offsets: number[];
      crcs: number[];
      errors: (string | null)[];
      paths: string[];
      encoded?: { encoding: CacheEncoding; lengths: number[] };
    }
  /** Encoded images from a pack: the i-th sample's bytes are `lengths[i]` bytes of `data` from `offsets[i]`, with CRC-32 `crcs[i]`. */
  | { kind: 'bytes'; data: SharedArrayBuffer; offsets: number[]; lengths: number[]; crcs: number[]; paths: string[] };

/** Load, augment and standardise the task's samples into consecutive rows of `target` from `position`. */
export interface DecodeTask {
  source: SampleSource;
  /** Dataset index of each sample: with (seed, epoch) it keys the sample's random parameters. */
  samples: number[];
  seed: number;
  epoch: number;
  image: ImageSpec;
  augment: AugmentSpec;
  normalization: Normalization;
  target: SharedArrayBuffer;
  dtype: PixelType;
  position: number;
  /** When set, the un-augmented uint8 pixels of each sample are also written here (raw pixel cache). */
  cacheTarget?: SharedArrayBuffer;
  /** When set, the un-augmented uint8 pixels of each sample are also encoded so and returned (encoded pixel cache). */
  cacheEncoding?: CacheEncoding;
  /** 0 on the first try; a task whose worker died is retried once with 1. */
  attempt: number;
  /** Test hooks. */
  jitterMs?: number;
  crashOnAttempt?: number;
}

export interface DecodeFailure {
  position: number;
  path: string;
  reason: string;
}

export interface DecodeResult {
  failures: DecodeFailure[];
  /** With cacheEncoding: each sample's encoded pixels, in task order (empty where it failed). */
  encoded?: Uint8Array[];
}

/** The key of the message a worker posts once its modules have loaded: `{ [LOADED]: threadId }`. */
export const LOADED = 'featherstack:decode-worker-loaded';
