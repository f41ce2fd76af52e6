/** Image settings as every file records them: the pixel cache, feature files, the stacked model. */

export const COLOR_MODES = ['grayscale', 'rgb', 'rgba'] as const;
export type ColorMode = (typeof COLOR_MODES)[number];
/** Keras's `load_img` filters: Pillow's resampling filters by their Keras names. */
export type Interpolation = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos' | 'box' | 'hamming';

export const INTERPOLATIONS: readonly Interpolation[] = ['nearest', 'bilinear', 'bicubic', 'lanczos', 'box', 'hamming'];
/** The filters as an option's error message lists them. */
export const INTERPOLATION_CHOICES = `${INTERPOLATIONS.slice(0, -1)
  .map((i) => `'${i}'`)
  .join(', ')} or '${INTERPOLATIONS.at(-1)}'`;
export const CHANNELS: Readonly<Record<ColorMode, 1 | 3 | 4>> = { grayscale: 1, rgb: 3, rgba: 4 };

/**
 * Images a batch of pixels that only pass through (a pixel cache's shards; extraction sizes its
 * batches from the model's activations, core's extractionBatchFor) holds: up to 256, and no more than 4M input values however large the images. At 224² RGB a
 * batch of 256 held 1.6 GB of first-layer activations for no gain.
 */
export function pixelBatch(imageSize: readonly [number, number], colorMode: ColorMode): number {
  const [h, w] = imageSize;
  return Math.max(1, Math.min(256, Math.floor(2 ** 22 / (h * w * CHANNELS[colorMode]))));
}
