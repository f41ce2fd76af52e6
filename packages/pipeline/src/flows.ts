/**
 * The flows of a run, assembled once for the workflow, the stage commands and the trainer
 * service: the same image settings, rescale and error policy everywhere.
 */
import { join } from 'node:path';
import {
  type AugmentOptions,
  type CacheFormat,
  cacheFormatName,
  parseCacheFormat,
  type CachePlan,
  type ColorMode,
  flowFromData,
  type ImageFlow,
  type ImagePool,
  type OnError,
  type PreprocessMode,
  type SkippedFile,
  siblingFlow,
} from '@featherstack/images';

/** The image settings and policies every flow of a run shares. */
export interface ImageSettings {
  imageSize: [number, number];
  colorMode: ColorMode;
  batchSize: number;
  seed: number;
  onError?: OnError;
  onSkip?: (file: SkippedFile) => void;
  workers?: number;
  pool?: ImagePool;
  /** Keras's preprocess_input mode the base expects (every flow of the run applies it). Default 'none'. */
  preprocess?: PreprocessMode;
  /** The shuffle buffer of a training flow over a pack (images). Default: flowFromPack's. */
  shuffleBuffer?: number;
}

function common(s: ImageSettings) {
  return {
    targetSize: s.imageSize,
    colorMode: s.colorMode,
    batchSize: s.batchSize,
    seed: s.seed,
    onError: s.onError ?? 'raise',
    ...(s.onSkip ? { onSkip: s.onSkip } : {}),
    ...(s.pool ? { pool: s.pool } : s.workers !== undefined ? { workers: s.workers } : {}),
  };
}

/** A pixel cache of a flow: its file, how rows are stored, the bytes it may take. */
export interface CacheChoice {
  path: string;
  format: CacheFormat;
  budget?: number;
}

function cacheOptions(cache: CacheChoice | undefined) {
  if (!cache) return {};
  return { cache: cache.path, cacheFormat: cache.format, ...(cache.budget !== undefined ? { cacheBudget: cache.budget } : {}) };
}

/** The augmented training flow (shuffled): what the base trains on. `dir` is a directory of class folders or a pack. */
export function trainingFlow(dir: string, s: ImageSettings, augment: AugmentOptions, cache?: CacheChoice): Promise<ImageFlow> {
  return flowFromData(dir, {
    ...common(s),
    ...cacheOptions(cache),
    ...(s.shuffleBuffer !== undefined ? { shuffleBuffer: s.shuffleBuffer } : {}),
    shuffle: true,
    augment: { ...augment, preprocess: s.preprocess ?? 'none' },
  });
}

/**
 * A plain flow in file order, rescaled only: validation, extraction and evaluation. Given the
 * training flow over the same directory (`of`), it is that flow's sibling: the files are not
 * listed, nor their stamps taken, a second time.
 */
export function plainFlow(
  dir: string,
  s: ImageSettings,
  rescale: number,
  options: { cache?: CacheChoice; batchSize?: number; shard?: { index: number; count: number }; of?: ImageFlow } = {},
): Promise<ImageFlow> {
  const flowOptions = {
    ...common(s),
    batchSize: options.batchSize ?? s.batchSize,
    ...cacheOptions(options.cache),
    shuffle: false,
    augment: { rescale, preprocess: s.preprocess ?? 'none' },
  };
  // A pack's flow lists nothing worth sharing (its index is read in one go): only file flows are siblings.
  if (options.of && options.of.packDir === null && !options.shard) return siblingFlow(options.of, flowOptions);
  return flowFromData(dir, { ...flowOptions, ...(options.shard ? { shard: options.shard } : {}) });
}

/**
 * The pixel cache of a run's training images, under `out/cache`, or undefined for `off`: one file
 * per size, colour mode and format (`train-224x224-rgb.arrow`, `…-png.arrow`, `…-jpeg90.arrow`).
 */
export function runCache(out: string, s: Pick<ImageSettings, 'imageSize' | 'colorMode'>, format: RunCacheFormat, budget?: number): CacheChoice | undefined {
  if (format === 'off') return undefined;
  const name = cacheFormatName(parseCacheFormat(format, '--cache'));
  const suffix = name === 'raw' ? '' : `-${name.replace(':', '')}`;
  return {
    path: join(out, 'cache', `train-${s.imageSize.join('x')}-${s.colorMode}${suffix}.arrow`),
    format: name as CacheFormat,
    ...(budget !== undefined ? { budget } : {}),
  };
}

/** run's --cache: a format of the pixel cache, or off. */
export type RunCacheFormat = CacheFormat | 'off';

/** Whether a cache gives back the decoded pixels exactly (raw, png), so extraction may read it too. */
export function lossless(cache: CacheChoice): boolean {
  return !cache.format.startsWith('jpeg');
}

/** The pixel cache plan as run's log says it. */
export function describeCachePlan(plan: CachePlan): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  switch (plan.state) {
    case 'none':
      return 'pixel cache: off';
    case 'read':
      return `pixel cache: reading ${plan.path} (${plan.format})`;
    case 'write':
      return plan.bytes === null
        ? `pixel cache: ${plan.format}, written as the first epoch encodes it, within a ${mib(plan.budget)} budget → ${plan.path}`
        : `pixel cache: raw pixels, ${mib(plan.bytes)} of a ${mib(plan.budget)} budget → ${plan.path}`;
    case 'over-budget':
      return `pixel cache: off, ${plan.reason}`;
    case 'pack':
      return `pixel cache: off, reading the pack ${plan.path} (its shards hold the encoded images)`;
  }
}
