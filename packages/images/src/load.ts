/**
 * Keras's `load_img`, to the bit: decode as Pillow does, convert colour as PIL's `convert()` does,
 * then resize as Pillow's `Image.resize` does (nearest with its accumulated sample positions, the
 * filters with its fixed-point convolution), optionally from Keras's keep_aspect_ratio box. Used by
 * the pool's workers for every file and exported as `loadImage` for single files.
 */
import { readFile } from 'node:fs/promises';
import { CHANNELS, INTERPOLATION_CHOICES } from '@featherstack/common';
import sharp from 'sharp';
import { decodeBmp, isBmp } from './decoders/bmp.js';
import { decodeGif, isGif } from './decoders/gif.js';
import type { DecodedImage } from './decoders/image.js';
import { type DecodeScratch, decodeJpegNative } from './decoders/jpeg.js';
import { decodePng, isPng } from './decoders/png.js';
import { decodePnm, isPnm } from './decoders/pnm.js';
import { ImageDecodeError, invalidOption } from './errors.js';
import type { ImageSpec } from './image-spec.js';
import type { ColorMode, Interpolation } from '@featherstack/common';
import { pilResize, type ResampleFilter } from './transforms/resample.js';

/** A region of the source image, in pixels. */
export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** libvips' kernel for each filter under `fastDecode` (libvips has no box or Hamming kernel: linear is nearest to both). */
const KERNELS = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3', box: 'linear', hamming: 'linear' } as const;

const isJpeg = (bytes: Uint8Array): boolean => bytes[0] === 0xff && bytes[1] === 0xd8;

/**
 * Decodes file bytes into Pillow's view of the image. PNG, BMP, PBM/PGM/PPM and GIF go through
 * this package's decoders (libvips has no BMP or PNM loader here, reads 16-bit grayscale otherwise
 * than Pillow, and blackens GIF transparency); clean gray and colour JPEGs through libjpeg-turbo
 * directly (decoders/jpeg.ts); other JPEGs, TIFF and WebP through libvips, with embedded ICC
 * profiles ignored as Pillow ignores them.
 */
export async function decodeImage(bytes: Buffer, pixelLimit: number): Promise<DecodedImage> {
  if (isPng(bytes)) return decodePng(bytes, pixelLimit);
  if (isBmp(bytes)) return decodeBmp(bytes, pixelLimit);
  if (isPnm(bytes)) return decodePnm(bytes, pixelLimit);
  if (isGif(bytes)) return decodeGif(bytes, pixelLimit);
  const jpeg = isJpeg(bytes);
  const fast = jpeg ? decodeJpegNative(bytes, pixelLimit) : null;
  if (fast) return fast;
  const input = () => sharp(bytes, { limitInputPixels: pixelLimit, failOn: 'error', ignoreIcc: true });
  // Pillow applies a TIFF's orientation tag on load (it ignores JPEG's and WebP's EXIF orientation).
  const meta = jpeg ? null : await input().metadata();
  const orientation = meta?.format === 'tiff' ? (meta.orientation ?? 1) : 1;
  if (meta?.channels === 1 && meta.depth === 'ushort') {
    // 16-bit grayscale (TIFF): Pillow's I;16, values kept.
    const { data, info } = await input().toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    return orient(
      { data: new Uint16Array(data.buffer, data.byteOffset, info.width * info.height), width: info.width, height: info.height, channels: 1 },
      orientation,
    );
  }
  const { data, info } = await input().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 && info.channels !== 4) throw new Error(`decoded to ${info.channels} channels, expected 3 or 4`);
  return orient({ data, width: info.width, height: info.height, channels: info.channels }, orientation);
}

/**
 * The image as TIFF orientation `orientation` (1–8, EXIF's numbering) says to display it: Pillow's
 * transposes (2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
 * 8 rotate 90° anticlockwise).
 */
export function orient(image: DecodedImage, orientation: number): DecodedImage {
  if (!(orientation >= 2 && orientation <= 8)) return image;
  const { width: w, height: h, channels: c, data } = image;
  const swap = orientation >= 5;
  const W = swap ? h : w;
  const H = swap ? w : h;
  const out = data instanceof Uint16Array ? new Uint16Array(data.length) : new Uint8Array(data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // (sx, sy): the stored pixel shown at (x, y).
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2:
          [sx, sy] = [w - 1 - x, y];
          break;
        case 3:
          [sx, sy] = [w - 1 - x, h - 1 - y];
          break;
        case 4:
          [sx, sy] = [x, h - 1 - y];
          break;
        case 5:
          [sx, sy] = [y, x];
          break;
        case 6:
          [sx, sy] = [y, h - 1 - x];
          break;
        case 7:
          [sx, sy] = [w - 1 - y, h - 1 - x];
          break;
        default:
          [sx, sy] = [w - 1 - y, x];
      }
      const o = (y * W + x) * c;
      const i = (sy * w + sx) * c;
      for (let k = 0; k < c; k++) out[o + k] = data[i + k]!;
    }
  }
  return { data: out, width: W, height: H, channels: c };
}

/**
 * One source pixel in the target colour mode, as PIL's `convert()` gives it: 'L' uses ITU-R 601-2
 * luma in fixed point (libvips' b-w differs), 'RGB' drops alpha, 'RGBA' adds an opaque one.
 */
function convertPixel(src: Uint8Array, i: number, srcChannels: number, dst: Uint8Array, o: number, channels: number): void {
  if (srcChannels <= 2) {
    // L or LA: PIL's L → L is the identity, LA → L keeps L, L → RGB(A) replicates.
    const v = src[i]!;
    dst[o] = v;
    if (channels === 1) return;
    dst[o + 1] = v;
    dst[o + 2] = v;
    if (channels === 4) dst[o + 3] = srcChannels === 2 ? src[i + 1]! : 255;
    return;
  }
  if (channels === 1) {
    dst[o] = (src[i]! * 19595 + src[i + 1]! * 38470 + src[i + 2]! * 7471 + 0x8000) >> 16;
    return;
  }
  dst[o] = src[i]!;
  dst[o + 1] = src[i + 1]!;
  dst[o + 2] = src[i + 2]!;
  if (channels === 4) dst[o + 3] = srcChannels === 4 ? src[i + 3]! : 255;
}

/** Keras's keep_aspect_ratio box: the largest centred crop with the target's aspect ratio. */
export function aspectBox(width: number, height: number, targetWidth: number, targetHeight: number): Box {
  const cropHeight = Math.min(height, Math.floor((width * targetHeight) / targetWidth));
  const cropWidth = Math.min(width, Math.floor((height * targetWidth) / targetHeight));
  return { left: Math.floor((width - cropWidth) / 2), top: Math.floor((height - cropHeight) / 2), width: cropWidth, height: cropHeight };
}

/**
 * Pillow's nearest-neighbour source indices (ImagingScaleAffine): the position starts at
 * box0 + step/2 and accumulates `step` in double precision, truncated per sample. The running sum
 * lands just below an exact integer where (x + 0.5)·step is one, picking the previous pixel;
 * floor((x + 0.5)·step) would pick the next (28 → 45 at x = 22).
 */
export function nearestIndices(start: number, extent: number, out: number): Int32Array {
  const step = extent / out;
  const indices = new Int32Array(out);
  let position = start + step * 0.5;
  for (let x = 0; x < out; x++) {
    indices[x] = position < 0 ? -1 : Math.trunc(position);
    position += step;
  }
  return indices;
}

const SIXTEEN_BIT_GRAYSCALE =
  "16-bit grayscale image: Keras keeps its values (0–65535) in colorMode 'grayscale', which 8-bit pixels cannot hold; convert the file to 8 bits, or use colorMode 'rgb' or 'rgba' (where Keras clips the values to 255, as featherstack does)";

/**
 * Colour conversion and resizing of a decoded image to `W`×`H`×`C`, as Keras's load_img does
 * them, from `box` (the whole image, Keras's keep_aspect_ratio box, or a random crop).
 */
export function resizeDecoded(
  image: DecodedImage,
  W: number,
  H: number,
  C: 1 | 3 | 4,
  interpolation: Interpolation,
  box: Box,
  /** Where to write the W×H×C result, when the caller reuses a buffer (nearest and unresized only). */
  into?: Uint8Array,
): Uint8Array {
  const { width, height } = image;
  let src: Uint8Array;
  if (image.data instanceof Uint16Array) {
    if (C === 1) throw new Error(SIXTEEN_BIT_GRAYSCALE);
    // Pillow's I;16 / I → RGB(A) clips to 255.
    src = new Uint8Array(image.data.length);
    for (let i = 0; i < src.length; i++) src[i] = Math.min(255, image.data[i]!);
  } else src = image.data;
  const sc = image.channels;
  // Keras resizes only when the size differs; Pillow then never short-cuts a filter, even for a crop
  // of the target's size, so RGBA still goes through its premultiplied round trip.
  const unchanged = box.left === 0 && box.top === 0 && box.width === width && box.height === height && W === width && H === height;
  if (interpolation === 'nearest' || unchanged) {
    const out = into ?? new Uint8Array(W * H * C);
    const xs = nearestIndices(box.left, box.width, W);
    const ys = nearestIndices(box.top, box.height, H);
    // Each output column's source offset within a row, clamped once rather than per pixel.
    const columns = new Int32Array(W);
    for (let x = 0; x < W; x++) columns[x] = Math.min(width - 1, Math.max(0, xs[x]!)) * sc;
    const rowBytes = width * sc;
    for (let y = 0, o = 0; y < H; y++) {
      const row = Math.min(height - 1, Math.max(0, ys[y]!)) * rowBytes;
      if (sc === 3 && C === 3) {
        // RGB to RGB (most photos): the bytes as they are.
        for (let x = 0; x < W; x++, o += 3) {
          const i = row + columns[x]!;
          out[o] = src[i]!;
          out[o + 1] = src[i + 1]!;
          out[o + 2] = src[i + 2]!;
        }
      } else if (sc === C && C === 1) {
        for (let x = 0; x < W; x++, o++) out[o] = src[row + columns[x]!]!;
      } else {
        for (let x = 0; x < W; x++, o += C) convertPixel(src, row + columns[x]!, sc, out, o, C);
      }
    }
    return out;
  }
  // Filtered resize: convert colour first (Keras converts before resizing), then Pillow's resample.
  const converted = new Uint8Array(width * height * C);
  for (let i = 0, o = 0; o < converted.length; i += sc, o += C) convertPixel(src, i, sc, converted, o, C);
  return pilResize(converted, width, height, C, box, W, H, interpolation as ResampleFilter);
}

/**
 * Loads `bytes` at the flow's size and colour mode: Keras-exact by default; with `fastDecode`,
 * one libvips pass with JPEG shrink-on-load (pixels differ slightly from PIL). `crop` (random
 * resized crop) replaces the resize box.
 */
export async function loadPixels(
  bytes: Buffer,
  image: ImageSpec,
  crop: ((width: number, height: number) => Box) | null,
  scratch?: PixelScratch,
): Promise<Uint8Array> {
  const { width: W, height: H, channels: C } = image;
  if (image.fastDecode) {
    let pipeline = sharp(bytes, { limitInputPixels: image.pixelLimit, failOn: 'error' });
    if (crop) {
      const meta = await pipeline.metadata();
      if (!meta.width || !meta.height) throw new Error('image has no dimensions');
      pipeline = pipeline.extract(crop(meta.width, meta.height));
    }
    pipeline =
      C === 1
        ? pipeline.removeAlpha().toColourspace('b-w')
        : C === 3
          ? pipeline.removeAlpha().toColourspace('srgb')
          : pipeline.ensureAlpha().toColourspace('srgb');
    const resize = { fit: image.keepAspectRatio ? 'cover' : 'fill', position: 'centre', kernel: KERNELS[image.interpolation] } as const;
    const { data, info } = await pipeline.resize(W, H, resize).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== C || info.width !== W || info.height !== H)
      throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${W}×${H}×${C}`);
    return data;
  }
  // The native JPEG decode and the resize after it are synchronous: nothing else can write the
  // scratch in between.
  const decoded = (isJpeg(bytes) && decodeJpegNative(bytes, image.pixelLimit, scratch?.decoded)) || (await decodeImage(bytes, image.pixelLimit));
  const { width, height } = decoded;
  const box = crop ? crop(width, height) : image.keepAspectRatio ? aspectBox(width, height, W, H) : { left: 0, top: 0, width, height };
  if (scratch && scratch.pixels?.length !== W * H * C) scratch.pixels = new Uint8Array(W * H * C);
  return resizeDecoded(decoded, W, H, C, image.interpolation, box, scratch?.pixels ?? undefined);
}

/**
 * Buffers a decode worker reuses from image to image. With one, loadPixels returns a view of
 * `pixels`, valid until its next call with the same scratch.
 */
export interface PixelScratch {
  decoded: DecodeScratch;
  pixels: Uint8Array | null;
}

export interface LoadImageOptions {
  /** Default 'rgb', as Keras. */
  colorMode?: ColorMode;
  /** [height, width]; default: the image's own size. */
  targetSize?: [number, number];
  /** Default 'nearest', as Keras. */
  interpolation?: Interpolation;
  keepAspectRatio?: boolean;
  /** Refuse images with more pixels than this. Default 16384², as flows. */
  pixelLimit?: number;
}

export interface LoadedImage {
  /** HWC pixels. */
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3 | 4;
}

/**
 * Keras's `load_img(path, color_mode, target_size, interpolation, keep_aspect_ratio)` followed by
 * `img_to_array`, as bytes. Rejects with an ImageDecodeError naming the file.
 */
export async function loadImage(path: string, options: LoadImageOptions = {}): Promise<LoadedImage> {
  const colorMode = options.colorMode ?? 'rgb';
  if (!(colorMode in CHANNELS)) throw invalidOption('colorMode', "'grayscale', 'rgb' or 'rgba'", colorMode);
  const interpolation = options.interpolation ?? 'nearest';
  if (!(interpolation in KERNELS)) throw invalidOption('interpolation', INTERPOLATION_CHOICES, interpolation);
  const size = options.targetSize;
  if (size !== undefined && !(Array.isArray(size) && size.length === 2 && size.every((v) => Number.isInteger(v) && v > 0))) {
    throw invalidOption('targetSize', '[height, width] of positive integers', size);
  }
  const pixelLimit = options.pixelLimit ?? 16384 * 16384;
  const channels = CHANNELS[colorMode];
  try {
    const decoded = await decodeImage(await readFile(path), pixelLimit);
    const [H, W] = size ?? [decoded.height, decoded.width];
    const box =
      options.keepAspectRatio && size && (W !== decoded.width || H !== decoded.height)
        ? aspectBox(decoded.width, decoded.height, W, H)
        : { left: 0, top: 0, width: decoded.width, height: decoded.height };
    return { data: resizeDecoded(decoded, W, H, channels, interpolation, box), height: H, width: W, channels };
  } catch (error) {
    throw new ImageDecodeError(path, (error as Error).message);
  }
}
