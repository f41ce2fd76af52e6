/**
 * The main-thread ↔ worker protocol: plain data only, so it crosses the thread boundary as a
 * structured clone. The destination slot is a SharedArrayBuffer, which is shared, not copied.
 * @internal
 */
import type { AugmentSpec } from './augment.js';

export type ColorMode = 'grayscale' | 'rgb' | 'rgba';
export type Interpolation = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';

export interface ImageSpec {
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  colorMode: ColorMode;
  interpolation: Interpolation;
  keepAspectRatio: boolean;
  /** Refuse images with more pixels than this (decompression bombs). */
  pixelLimit: number;
}

/** Decode, resize and augment `paths` into consecutive samples of `target` starting at `position`. */
export interface DecodeTask {
  root: string;
  paths: string[];
  /** Dataset index of each path: with (seed, epoch) it keys the sample's random parameters. */
  samples: number[];
  seed: number;
  epoch: number;
  image: ImageSpec;
  augment: AugmentSpec;
  target: SharedArrayBuffer;
  /** Byte offset of the slot's image region inside `target`. */
  byteOffset: number;
  position: number;
  /** Test hook: delay each task by a random 0..n ms to reorder completions. */
  jitterMs?: number;
}

export interface DecodeFailure {
  position: number;
  path: string;
  reason: string;
}

export interface DecodeResult {
  failures: DecodeFailure[];
}
