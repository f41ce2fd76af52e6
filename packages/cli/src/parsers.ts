/**
 * Flag value parsers: each turns a flag's text into the value the API takes, or throws commander's
 * InvalidArgumentError naming the flag and the value (exit status 2). Unit-tested in test/parsers.
 */
import type { Plateau, Schedule } from '@featherstack/pipeline';
import { POOLINGS } from '@featherstack/core';
import { COLOR_MODES, isCacheFormat, ON_ERROR_MODES, PREPROCESS_MODES } from '@featherstack/images';
import { parseAugmentFlag } from '@featherstack/pipeline';
import { InvalidArgumentError } from 'commander';

export function int(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, received '${value}'`);
    return n;
  };
}

/** `--units 128,64` (empty for none). */
export function units(value: string): number[] {
  return value === '' ? [] : value.split(',').map((u) => int('--units')(u));
}

export function size(value: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(value);
  const h = Number(m?.[1]);
  const w = m?.[2] ? Number(m[2]) : h;
  if (!m || h < 1 || w < 1) throw new InvalidArgumentError(`--image-size must be N or HxW of positive integers (e.g. 28 or 224x224), received '${value}'`);
  return [h, w];
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** A byte count: `500M`, `2G`, `1.5T`, `10000` (binary units, case-insensitive, optional trailing B or iB). */
export function bytes(flag: string) {
  return (value: string): number => {
    const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
    const n = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : Number.NaN;
    if (!(n >= 1)) throw new InvalidArgumentError(`${flag} must be a size such as 500M, 2G or a number of bytes, received '${value}'`);
    return Math.floor(n);
  };
}

/** A value out of `values` (each list is its owner's, so that flags and the API accept the same). */
export function choice<T extends string>(flag: string, values: readonly T[]) {
  return (value: string): T => {
    if (!values.includes(value as T))
      throw new InvalidArgumentError(`${flag} must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}, received '${value}'`);
    return value as T;
  };
}

/** --cache: raw, png, jpeg[:Q] or off. */
export function cacheFormat(value: string): string {
  if (value === 'off' || isCacheFormat(value)) return value;
  throw new InvalidArgumentError(`--cache must be raw, png, jpeg[:Q] (Q from 1 to 100) or off, received '${value}'`);
}

export const colorMode = choice('--color-mode', COLOR_MODES);
export const onError = choice('--on-error', ON_ERROR_MODES);
export const pooling = choice('--pooling', POOLINGS);
export const preprocess = choice('--preprocess', PREPROCESS_MODES);

export function shard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError(`--shard must be i/n with 0 ≤ i < n (e.g. 0/4), received '${value}'`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export function recurrentHead(value: string): { kind: 'gru' | 'lstm'; units: number } {
  const m = /^(gru|lstm):(\d+)$/.exec(value);
  if (!m || Number(m[2]) < 1) throw new InvalidArgumentError(`--recurrent must be gru:UNITS or lstm:UNITS (e.g. gru:32), received '${value}'`);
  return { kind: m[1] as 'gru' | 'lstm', units: Number(m[2]) };
}

export function augment(value: string): ReturnType<typeof parseAugmentFlag> {
  try {
    return parseAugmentFlag(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** `--schedule constant | cosine[:MIN_LR] | step:EVERY:FACTOR`. */
export function schedule(value: string): Schedule {
  const [kind, ...rest] = value.split(':');
  const numbers = rest.map(Number);
  if (kind === 'constant' && rest.length === 0) return { kind };
  if (kind === 'cosine' && rest.length <= 1 && numbers.every((n) => n >= 0)) return rest.length ? { kind, minLearningRate: numbers[0]! } : { kind };
  if (kind === 'step' && rest.length === 2 && Number.isSafeInteger(numbers[0]) && numbers[0]! >= 1 && numbers[1]! > 0 && numbers[1]! <= 1)
    return { kind, every: numbers[0]!, factor: numbers[1]! };
  throw new InvalidArgumentError(`--schedule must be constant, cosine[:MIN_LR] or step:EVERY:FACTOR (EVERY epochs ≥ 1, FACTOR in (0, 1]), received '${value}'`);
}

/** `--reduce-on-plateau PATIENCE[:FACTOR]`: Keras's ReduceLROnPlateau on val_loss. */
export function plateau(value: string): Plateau {
  const [p, f, ...rest] = value.split(':');
  const patience = Number(p);
  const factor = f === undefined ? undefined : Number(f);
  if (rest.length === 0 && Number.isSafeInteger(patience) && patience >= 0 && (factor === undefined || (factor > 0 && factor < 1)))
    return factor === undefined ? { patience } : { patience, factor };
  throw new InvalidArgumentError(`--reduce-on-plateau must be PATIENCE[:FACTOR] (epochs ≥ 0, FACTOR in (0, 1)), e.g. 2:0.5, received '${value}'`);
}

/** `--class-weight balanced` or `NAME=W,NAME=W` (a class name or index; positive weights). */
export function classWeight(value: string): 'balanced' | Record<string, number> {
  if (value === 'balanced') return value;
  const entries = value.split(',').map((pair) => {
    const eq = pair.lastIndexOf('=');
    const weight = Number(pair.slice(eq + 1));
    if (eq < 1 || !(weight > 0) || !Number.isFinite(weight))
      throw new InvalidArgumentError(`--class-weight must be balanced or NAME=W,… with positive weights (e.g. cat=2,dog=0.5), received '${value}'`);
    return [pair.slice(0, eq), weight] as const;
  });
  return Object.fromEntries(entries);
}

/** `--fine-tune all` or a positive number of layers. */
export function fineTune(value: string): 'all' | number {
  if (value === 'all') return value;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`--fine-tune must be all or a positive number of layers, received '${value}'`);
  return n;
}

/** A positive finite number (a learning rate). */
export function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a positive number, received '${value}'`);
    return n;
  };
}
