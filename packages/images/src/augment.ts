/**
 * Augmentation options (a superset of Keras's ImageDataGenerator) and the per-sample parameters
 * drawn from them. Parameters are a pure function of (seed, epoch, sample index): see rng.ts.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { invalidOption } from './errors.js';
import { CounterRng, Stream } from '@featherstack/common';
import type { AffineParams } from './transforms/affine.js';
import { PREPROCESS_MODES, type PreprocessMode } from './transforms/preprocess-input.js';
import { FILL_MODES, type FillMode } from './transforms/warp.js';

export interface AugmentOptions {
  /** Degrees; rotation drawn uniformly from [-r, r]. */
  rotationRange?: number;
  /** Fraction of the width (< 1), pixels (≥ 1), or a list of pixel values to choose from (sign random). */
  widthShiftRange?: number | number[];
  /** As widthShiftRange, for the height. */
  heightShiftRange?: number | number[];
  /** Shear angle in degrees (as in Keras), drawn from [-s, s]. */
  shearRange?: number;
  /** z for [1 - z, 1 + z], or [lo, hi]; x and y zoom are drawn independently, as in Keras. */
  zoomRange?: number | [number, number];
  /** Channel shift intensity drawn from [-c, c], added to every channel, then clipped to the image's range. */
  channelShiftRange?: number;
  /** [lo, hi]: brightness factor drawn uniformly. */
  brightnessRange?: [number, number];
  horizontalFlip?: boolean;
  verticalFlip?: boolean;
  /** How points outside the input are filled. Default 'nearest' (Keras's default). */
  fillMode?: FillMode;
  /** Fill value for fillMode 'constant' (in input pixel units, 0–255). */
  cval?: number;
  /** 1 (linear, Keras's default) or 0 (nearest). */
  interpolationOrder?: 0 | 1;
  /** Multiplies every pixel after augmentation (Keras's `rescale`, e.g. 1/255). */
  rescale?: number;
  /** Reproduce Keras's swapped shift axes, off-centre pivot and fit() units bit for bit. Default false. */
  keras?: boolean;
  /** Subtract each image's own mean (after rescale). */
  samplewiseCenter?: boolean;
  /** Divide each image by its own std (after rescale). */
  samplewiseStdNormalization?: boolean;
  /** Subtract the per-channel dataset mean computed by `flow.fit()`. */
  featurewiseCenter?: boolean;
  /** Divide by the per-channel dataset std computed by `flow.fit()`. */
  featurewiseStdNormalization?: boolean;
  /** ZCA whitening with the matrix computed by `flow.fit()` (small images: the matrix is (h·w·c)²). */
  zcaWhitening?: boolean;
  /** ε added to the eigenvalues for ZCA. Default 1e-6 (Keras's). */
  zcaEpsilon?: number;
  /**
   * Path of an ES module whose default export `(image: Float32Array, shape: [h, w, c]) => void`
   * transforms each augmented image in place, in 0–255 units, before rescale (Keras's
   * preprocessing_function). Workers import it, so it must be a module, not a closure.
   */
  preprocessingFunction?: string;
  /**
   * One of Keras's `preprocess_input` modes ('tf', 'caffe', 'torch'; default 'none'), applied after
   * `preprocessingFunction` and before rescale, as ImageDataGenerator(preprocessing_function=
   * preprocess_input) applies it. See transforms/preprocess-input.ts.
   */
  preprocess?: PreprocessMode;
}

/** Validated options with defaults applied. @internal */
export interface AugmentSpec {
  rotationRange: number;
  widthShiftRange: number | number[];
  heightShiftRange: number | number[];
  shearRange: number;
  zoomRange: [number, number];
  channelShiftRange: number;
  brightnessRange: [number, number] | null;
  horizontalFlip: boolean;
  verticalFlip: boolean;
  fillMode: FillMode;
  cval: number;
  interpolationOrder: 0 | 1;
  rescale: number;
  keras: boolean;
  samplewiseCenter: boolean;
  samplewiseStdNormalization: boolean;
  featurewiseCenter: boolean;
  featurewiseStdNormalization: boolean;
  zcaWhitening: boolean;
  zcaEpsilon: number;
  /** File URL of the preprocessing module, or null. */
  preprocessingFunction: string | null;
  preprocess: PreprocessMode;
}

function nonNegative(name: string, value: unknown, fallback = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(name, 'a finite number ≥ 0', value);
  }
  return value;
}

function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidOption(name, 'a finite number > 0', value);
  return value;
}

function shiftRange(name: string, value: unknown): number | number[] {
  if (value === undefined) return 0;
  if (Array.isArray(value)) {
    if (value.length === 0 || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw invalidOption(name, 'a number or a non-empty list of numbers', value);
    }
    return value as number[];
  }
  return nonNegative(name, value);
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

function moduleUrl(name: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length === 0) throw invalidOption(name, 'the path of an ES module', value);
  if (value.startsWith('file:')) return value;
  const path = resolve(value);
  if (!existsSync(path)) throw invalidOption(name, 'the path of an existing ES module', value);
  return pathToFileURL(path).href;
}

function preprocessMode(name: string, value: unknown): PreprocessMode {
  if (value === undefined) return 'none';
  if (!(PREPROCESS_MODES as readonly unknown[]).includes(value)) throw invalidOption(name, `one of ${PREPROCESS_MODES.map((m) => `'${m}'`).join(', ')}`, value);
  return value as PreprocessMode;
}

/** Every key of AugmentOptions: anything else is a typo that would otherwise be ignored. */
export const AUGMENT_KEYS: readonly (keyof AugmentOptions)[] = [
  'rotationRange',
  'widthShiftRange',
  'heightShiftRange',
  'shearRange',
  'zoomRange',
  'channelShiftRange',
  'brightnessRange',
  'horizontalFlip',
  'verticalFlip',
  'fillMode',
  'cval',
  'interpolationOrder',
  'rescale',
  'keras',
  'samplewiseCenter',
  'samplewiseStdNormalization',
  'featurewiseCenter',
  'featurewiseStdNormalization',
  'zcaWhitening',
  'zcaEpsilon',
  'preprocessingFunction',
  'preprocess',
];

/** Validates augmentation options; every message names the option and the value received. @internal */
export function resolveAugment(options: AugmentOptions = {}, prefix = 'augment'): AugmentSpec {
  const n = (k: string) => `${prefix}.${k}`;
  if (typeof options !== 'object' || options === null) throw invalidOption(prefix, 'an object', options);
  for (const key of Object.keys(options)) {
    if (!(AUGMENT_KEYS as readonly string[]).includes(key)) {
      throw invalidOption(
        n(key),
        `a known augmentation option — there is no such option (known: ${AUGMENT_KEYS.join(', ')})`,
        (options as Record<string, unknown>)[key],
      );
    }
  }
  let zoom: [number, number] = [1, 1];
  if (Array.isArray(options.zoomRange)) {
    const [lo, hi] = options.zoomRange;
    if (options.zoomRange.length !== 2 || typeof lo !== 'number' || typeof hi !== 'number' || !(lo > 0) || !(hi >= lo)) {
      throw invalidOption(n('zoomRange'), 'a number in [0, 1) or [lo, hi] with 0 < lo ≤ hi', options.zoomRange);
    }
    zoom = [lo, hi];
  } else if (options.zoomRange !== undefined) {
    const z = options.zoomRange;
    if (typeof z !== 'number' || !(z >= 0 && z < 1)) {
      throw invalidOption(n('zoomRange'), 'a number in [0, 1) or [lo, hi] with 0 < lo ≤ hi', z);
    }
    zoom = [1 - z, 1 + z];
  }
  let brightness: [number, number] | null = null;
  if (options.brightnessRange !== undefined) {
    const b = options.brightnessRange;
    if (!Array.isArray(b) || b.length !== 2 || !(b[0] >= 0) || !(b[1] >= b[0])) {
      throw invalidOption(n('brightnessRange'), '[lo, hi] with 0 ≤ lo ≤ hi', b);
    }
    brightness = [b[0], b[1]];
  }
  const fillMode = options.fillMode ?? 'nearest';
  if (!(FILL_MODES as readonly string[]).includes(fillMode)) {
    throw invalidOption(n('fillMode'), `one of ${FILL_MODES.map((m) => `'${m}'`).join(', ')}`, fillMode);
  }
  const order = options.interpolationOrder ?? 1;
  if (order !== 0 && order !== 1) throw invalidOption(n('interpolationOrder'), '0 or 1', order);
  const rescale = options.rescale ?? 1;
  if (typeof rescale !== 'number' || !Number.isFinite(rescale) || rescale === 0) {
    throw invalidOption(n('rescale'), 'a finite non-zero number', rescale);
  }
  const cval = options.cval ?? 0;
  if (typeof cval !== 'number' || !Number.isFinite(cval)) throw invalidOption(n('cval'), 'a finite number', cval);
  return {
    rotationRange: nonNegative(n('rotationRange'), options.rotationRange),
    widthShiftRange: shiftRange(n('widthShiftRange'), options.widthShiftRange),
    heightShiftRange: shiftRange(n('heightShiftRange'), options.heightShiftRange),
    shearRange: nonNegative(n('shearRange'), options.shearRange),
    zoomRange: zoom,
    channelShiftRange: nonNegative(n('channelShiftRange'), options.channelShiftRange),
    brightnessRange: brightness,
    horizontalFlip: flag(n('horizontalFlip'), options.horizontalFlip),
    verticalFlip: flag(n('verticalFlip'), options.verticalFlip),
    fillMode,
    cval,
    interpolationOrder: order,
    rescale,
    keras: flag(n('keras'), options.keras),
    samplewiseCenter: flag(n('samplewiseCenter'), options.samplewiseCenter),
    samplewiseStdNormalization: flag(n('samplewiseStdNormalization'), options.samplewiseStdNormalization),
    featurewiseCenter: flag(n('featurewiseCenter'), options.featurewiseCenter),
    featurewiseStdNormalization: flag(n('featurewiseStdNormalization'), options.featurewiseStdNormalization),
    zcaWhitening: flag(n('zcaWhitening'), options.zcaWhitening),
    zcaEpsilon: positive(n('zcaEpsilon'), options.zcaEpsilon, 1e-6),
    preprocessingFunction: moduleUrl(n('preprocessingFunction'), options.preprocessingFunction),
    preprocess: preprocessMode(n('preprocess'), options.preprocess),
  };
}

/** The random parameters of one sample. @internal */
export interface SampleParams extends AffineParams {
  flipHorizontal: boolean;
  flipVertical: boolean;
  channelShift: number;
  brightness: number;
}

function drawShift(rng: CounterRng, range: number | number[], size: number): number {
  let shift: number;
  if (Array.isArray(range)) {
    shift = range[rng.below(range.length)]! * (rng.next() < 0.5 ? -1 : 1);
    return Math.max(...range.map(Math.abs)) < 1 ? shift * size : shift;
  }
  if (range === 0) return 0;
  shift = rng.uniform(-range, range);
  return range < 1 ? shift * size : shift;
}

/** Draws the parameters of sample `index` in `epoch` (Keras's get_random_transform). @internal */
export function drawParams(spec: AugmentSpec, seed: number, epoch: number, index: number, height: number, width: number): SampleParams {
  const rng = new CounterRng(seed, epoch, index, Stream.augment);
  const theta = spec.rotationRange ? rng.uniform(-spec.rotationRange, spec.rotationRange) : 0;
  const heightShift = drawShift(rng, spec.heightShiftRange, height);
  const widthShift = drawShift(rng, spec.widthShiftRange, width);
  const shear = spec.shearRange ? rng.uniform(-spec.shearRange, spec.shearRange) : 0;
  let zx = 1;
  let zy = 1;
  if (spec.zoomRange[0] !== 1 || spec.zoomRange[1] !== 1) {
    zx = rng.uniform(spec.zoomRange[0], spec.zoomRange[1]);
    zy = rng.uniform(spec.zoomRange[0], spec.zoomRange[1]);
  }
  const flipHorizontal = spec.horizontalFlip && rng.next() < 0.5;
  const flipVertical = spec.verticalFlip && rng.next() < 0.5;
  const channelShift = spec.channelShiftRange ? rng.uniform(-spec.channelShiftRange, spec.channelShiftRange) : 0;
  const brightness = spec.brightnessRange ? rng.uniform(spec.brightnessRange[0], spec.brightnessRange[1]) : 1;
  return { theta, heightShift, widthShift, shear, zx, zy, flipHorizontal, flipVertical, channelShift, brightness };
}
