/**
 * A decoded image in Pillow's terms, before Keras's colour conversion and resizing.
 * @internal
 */
export interface DecodedImage {
  /**
   * Samples, row-major and interleaved. A Uint16Array only for 16-bit grayscale, Pillow's modes
   * I;16 and I, whose values (0–65535) Keras keeps in grayscale mode and clips to 255 in the others.
   */
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  /** 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. */
  channels: 1 | 2 | 3 | 4;
}

export function checkPixelLimit(format: string, width: number, height: number, pixelLimit: number): void {
  if (!(width > 0 && height > 0)) throw new Error(`${format} has an invalid size ${width}×${height}`);
  if (width * height > pixelLimit) throw new Error('Input image exceeds pixel limit');
}
