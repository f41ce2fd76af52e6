/**
 * JPEG through libjpeg-turbo directly (native/jpeg.c), where the package's small addon was built:
 * the same decoder libvips calls, with the same settings as Pillow (accurate integer IDCT, fancy
 * upsampling), without libvips' pipeline around it: 0.39 against 2.7 ms for a 500×375 photo on
 * this project's 2-core machines, bit-identical on the 2,000-photo corpus.
 *
 * It answers only for clean gray, YCbCr or RGB JPEGs within the pixel limit; for anything else
 * (CMYK, a warning or an error from libjpeg) it returns null and the caller decodes with libvips,
 * so such images keep their behaviour and messages. FEATHERSTACK_JPEG=libvips turns it off.
 * @internal
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { DecodedImage } from './image.js';

interface NativeJpeg {
  header(bytes: Uint8Array): [number, number, 1 | 3] | null;
  decode(bytes: Uint8Array, out: Uint8Array): boolean;
  jpegLibVersion: number;
}

/** Where the addon is built (`node scripts/build-native.mjs`, run by the package's build and install). */
export const JPEG_ADDON = fileURLToPath(new URL('../../native/build/featherstack_jpeg.node', import.meta.url));

/** Which JPEG decoder this process uses, and why when it is libvips. */
export interface JpegDecoderInfo {
  decoder: 'libjpeg-turbo' | 'libvips';
  reason?: string;
}

let native: NativeJpeg | null | undefined;
let info: JpegDecoderInfo = { decoder: 'libvips' };

function load(): NativeJpeg | null {
  if (native !== undefined) return native;
  native = null;
  if (process.env.FEATHERSTACK_JPEG === 'libvips') {
    info = { decoder: 'libvips', reason: 'FEATHERSTACK_JPEG=libvips' };
  } else if (!existsSync(JPEG_ADDON)) {
    info = { decoder: 'libvips', reason: `${JPEG_ADDON} is not built (it needs a C compiler and libjpeg-turbo's headers: Debian libjpeg62-turbo-dev)` };
  } else {
    try {
      native = createRequire(import.meta.url)(JPEG_ADDON) as NativeJpeg;
      info = { decoder: 'libjpeg-turbo' };
    } catch (error) {
      info = { decoder: 'libvips', reason: `${JPEG_ADDON} does not load: ${(error as Error).message}` };
    }
  }
  return native;
}

/** The JPEG decoder in use (for `doctor` and benchmark reports). */
export function jpegDecoder(): JpegDecoderInfo {
  load();
  return info;
}

/** A buffer a caller reuses across decodes: grown, never shrunk. */
export interface DecodeScratch {
  bytes: Uint8Array;
}

/**
 * `bytes` decoded, or null where libvips must decode it. With `scratch`, the pixels are a view of
 * its buffer, valid until the next decode into it: a fresh half-megabyte buffer per photo costs
 * more in page faults on these VMs than the decode itself (~2 ms).
 */
export function decodeJpegNative(bytes: Uint8Array, pixelLimit: number, scratch?: DecodeScratch): DecodedImage | null {
  const jpeg = load();
  if (!jpeg) return null;
  const header = jpeg.header(bytes);
  if (!header) return null;
  const [width, height, channels] = header;
  if (width * height > pixelLimit) return null;
  const size = width * height * channels;
  let out: Uint8Array;
  if (scratch) {
    if (scratch.bytes.length < size) scratch.bytes = new Uint8Array(Math.max(size, scratch.bytes.length * 2));
    out = scratch.bytes.subarray(0, size);
  } else out = new Uint8Array(size);
  if (!jpeg.decode(bytes, out)) return null;
  return { data: out, width, height, channels };
}
