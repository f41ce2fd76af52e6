/**
 * The flows of a run, assembled once for the workflow, the stage commands and the trainer
 * service: the same image settings, rescale and error policy everywhere.
 */
import { join } from 'node:path';
import {
  type AugmentOptions,
  type CachePlan,
  type ColorMode,
  flowFromData,
  type ImageFlow,
  type ImagePool,
  type OnError,
  type PreprocessMode,
  type SkippedFile,
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

/** The augmented training flow (shuffled): what the base trains on. `dir` is a directory of class folders or a pack. */
export function trainingFlow(dir: string, s: ImageSettings, augment: AugmentOptions, cache?: string, cacheBudget?: number): Promise<ImageFlow> {
  return flowFromData(dir, {
    ...common(s),
    ...(cache ? { cache } : {}),
    ...(cacheBudget !== undefined ? { cacheBudget } : {}),
    ...(s.shuffleBuffer !== undefined ? { shuffleBuffer: s.shuffleBuffer } : {}),
    shuffle: true,
    augment: { ...augment, preprocess: s.preprocess ?? 'none' },
  });
}

/** A plain flow in file order, rescaled only: validation, extraction and evaluation. */
export function plainFlow(
  dir: string,
  s: ImageSettings,
  rescale: number,
  options: { cache?: string; batchSize?: number; shard?: { index: number; count: number } } = {},
): Promise<ImageFlow> {
  return flowFromData(dir, {
    ...common(s),
    batchSize: options.batchSize ?? s.batchSize,
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.shard ? { shard: options.shard } : {}),
    shuffle: false,
    augment: { rescale, preprocess: s.preprocess ?? 'none' },
  });
}

/** The pixel cache of a run's training images, under `out/cache`. */
export function pixelCachePath(out: string, s: Pick<ImageSettings, 'imageSize' | 'colorMode'>): string {
  return join(out, 'cache', `train-${s.imageSize.join('x')}-${s.colorMode}.arrow`);
}

/** The pixel cache plan as run's log says it. */
export function describeCachePlan(plan: CachePlan): string {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  switch (plan.state) {
    case 'none':
      return 'pixel cache: off';
    case 'read':
      return `pixel cache: reading ${plan.path}`;
    case 'write':
      return `pixel cache: raw pixels, ${mib(plan.bytes)} of a ${mib(plan.budget)} budget → ${plan.path}`;
    case 'over-budget':
      return `pixel cache: off, ${plan.reason}`;
    case 'pack':
      return `pixel cache: off, reading the pack ${plan.path} (its shards hold the encoded images)`;
  }
}
