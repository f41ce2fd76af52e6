/**
 * What a flow's images are: size, channels and the loading settings every stage shares (the
 * loader, the pixel cache, the flow and the pool's protocol), kept below all of them.
 */
import type { ColorMode, Interpolation } from '@featherstack/common';

export type PixelType = 'float32' | 'uint8';

export interface ImageSpec {
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  colorMode: ColorMode;
  interpolation: Interpolation;
  keepAspectRatio: boolean;
  /** Refuse images with more pixels than this (decompression bombs). */
  pixelLimit: number;
  /** Decode and resize in one libvips pass with JPEG shrink-on-load instead of PIL-exact resizing. */
  fastDecode: boolean;
  /** Random-resized-crop: [min, max] area fraction and [min, max] aspect ratio of the crop; null = off. */
  randomCrop: { scale: [number, number]; ratio: [number, number] } | null;
}
