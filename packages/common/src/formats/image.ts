/** Image settings as every file records them: the pixel cache, feature files, the stacked model. */

export type ColorMode = 'grayscale' | 'rgb' | 'rgba';
export type Interpolation = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';

export const COLOR_MODES: readonly ColorMode[] = ['grayscale', 'rgb', 'rgba'];
export const INTERPOLATIONS: readonly Interpolation[] = ['nearest', 'bilinear', 'bicubic', 'lanczos'];
export const CHANNELS: Readonly<Record<ColorMode, 1 | 3 | 4>> = { grayscale: 1, rgb: 3, rgba: 4 };
