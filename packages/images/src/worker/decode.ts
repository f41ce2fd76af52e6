/**
 * The pool's worker entry. For each sample of a task: load uint8 (or float) pixels at the flow's
 * size — decoding the file with sharp (libvips), reading a pixel-cache row, or viewing an in-memory
 * array — then augment in JavaScript and write straight into the shared batch slot. One file, one
 * default export, as piscina expects.
 */
import { openSync, readFileSync, readSync } from 'node:fs';
import sharp from 'sharp';
import { drawParams } from '../augment.js';
import type { DecodeFailure, DecodeResult, DecodeTask, ImageSpec, Normalization } from '../protocol.js';
import { CounterRng, Stream } from '../rng.js';
import { kerasAffine } from '../transforms/affine.js';
import { pilResize } from '../transforms/resample.js';
import { decodePng, isPng } from './png.js';
import { type WarpSpec, warpInto } from '../transforms/warp.js';
import { whiten } from '../zca.js';

// Each worker is one of N parallel decoders: libvips' own thread pool per image would oversubscribe
// the cores (workers × libvips threads), and its operation cache only grows memory here.
sharp.concurrency(Number(process.env.FEATHERSTACK_VIPS_THREADS ?? 1));
sharp.cache(false);

const KERNELS = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3' } as const;

type Pixels = Uint8Array | Float32Array;
type Preprocess = (image: Float32Array, shape: [number, number, number]) => void;

/**
 * Random-resized-crop box (torchvision's RandomResizedCrop): area fraction and log-uniform aspect
 * ratio, ten tries, then a centre crop at the clamped ratio.
 */
export function cropBox(width: number, height: number, crop: NonNullable<ImageSpec['randomCrop']>, rng: CounterRng) {
  const area = width * height;
  const [lr0, lr1] = [Math.log(crop.ratio[0]), Math.log(crop.ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(crop.scale[0], crop.scale[1]);
    const aspect = Math.exp(rng.uniform(lr0, lr1));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { left: rng.below(width - w + 1), top: rng.below(height - h + 1), width: w, height: h };
    }
  }
  const ratio = width / height;
  let w = width;
  let h = height;
  if (ratio < crop.ratio[0]) h = Math.round(w / crop.ratio[0]);
  else if (ratio > crop.ratio[1]) w = Math.round(h * crop.ratio[1]);
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/**
 * One source pixel (3 or 4 channels, sRGB) in the flow's colour mode, as PIL's `convert()` gives
 * it: 'L' uses ITU-R 601-2 luma in fixed point (libvips' b-w differs), 'RGB' drops alpha, 'RGBA'
 * adds an opaque one.
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
function aspectBox(width: number, height: number, image: ImageSpec) {
  const cropHeight = Math.min(height, Math.floor((width * image.height) / image.width));
  const cropWidth = Math.min(width, Math.floor((height * image.width) / image.height));
  return { left: Math.floor((width - cropWidth) / 2), top: Math.floor((height - cropHeight) / 2), width: cropWidth, height: cropHeight };
}

/**
 * Decodes to the flow's size and colour mode. Default path, exact to Keras (PIL): decode at full
 * size to sRGB, convert colour as PIL does, then resize as Pillow does — nearest with its
 * sampling (floor((x + 0.5) · in/out)), other filters with its fixed-point convolution. `fastDecode` instead fuses
 * decode and resize in libvips with JPEG shrink-on-load: much faster for large JPEGs, pixels
 * differ slightly from PIL.
 */
async function decodeFile(path: string, image: ImageSpec, crop: ReturnType<typeof cropBox> | null): Promise<Uint8Array> {
  const { width: W, height: H, channels: C } = image;
  // Reading the file here and handing libvips the bytes measured ~11 % faster than libvips' own
  // file input for 500×375 JPEGs; this is a worker thread, so the synchronous read blocks nothing.
  const bytes = readFileSync(path);
  const png = !image.fastDecode && !crop && isPng(bytes) ? decodePng(bytes, image.pixelLimit) : null;
  if (png) return resizeDecoded(png.data, png.width, png.height, png.channels, image);
  let pipeline = sharp(bytes, { limitInputPixels: image.pixelLimit, failOn: 'error' });
  if (crop) pipeline = pipeline.extract(crop);
  if (image.fastDecode) {
    pipeline = C === 1 ? pipeline.removeAlpha().toColourspace('b-w') : C === 3 ? pipeline.removeAlpha().toColourspace('srgb') : pipeline.ensureAlpha().toColourspace('srgb');
    const resize = { fit: image.keepAspectRatio ? 'cover' : 'fill', position: 'centre', kernel: KERNELS[image.interpolation] } as const;
    const { data, info } = await pipeline.resize(W, H, resize).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== C || info.width !== W || info.height !== H) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${W}×${H}×${C}`);
    return data;
  }
  const { data: src, info } = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 && info.channels !== 4) throw new Error(`decoded to ${info.channels} channels, expected 3 or 4`);
  return resizeDecoded(src, info.width, info.height, info.channels, image);
}

/** Colour conversion and resizing of decoded pixels (1–4 channels), as Keras's load_img does them. */
function resizeDecoded(src: Uint8Array, width: number, height: number, sc: number, image: ImageSpec): Uint8Array {
  const { width: W, height: H, channels: C } = image;
  const box = image.keepAspectRatio ? aspectBox(width, height, image) : { left: 0, top: 0, width, height };
  if (image.interpolation === 'nearest' || (box.width === W && box.height === H)) {
    const out = new Uint8Array(W * H * C);
    const sx = box.width / W;
    const sy = box.height / H;
    for (let y = 0; y < H; y++) {
      const yi = Math.min(height - 1, Math.floor(sy * (y + 0.5) + box.top));
      for (let x = 0; x < W; x++) {
        const xi = Math.min(width - 1, Math.floor(sx * (x + 0.5) + box.left));
        convertPixel(src, (yi * width + xi) * sc, sc, out, (y * W + x) * C, C);
      }
    }
    return out;
  }
  // Filtered resize: convert colour first (Keras converts before resizing), then Pillow's resample.
  const converted = new Uint8Array(width * height * C);
  for (let i = 0, o = 0; o < converted.length; i += sc, o += C) convertPixel(src, i, sc, converted, o, C);
  return pilResize(converted, width, height, C, box, W, H, image.interpolation as 'bilinear' | 'bicubic' | 'lanczos');
}

function channelShiftAndBrightness(dst: Float32Array | Uint8ClampedArray, offset: number, size: number, shift: number, brightness: number): void {
  if (shift !== 0) {
    // Keras: clip(x + intensity, min(x), max(x)) over the whole image.
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = offset; i < offset + size; i++) {
      const v = dst[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (let i = offset; i < offset + size; i++) dst[i] = Math.min(hi, Math.max(lo, dst[i]! + shift));
  }
  if (brightness !== 1) for (let i = offset; i < offset + size; i++) dst[i] = Math.min(255, Math.max(0, dst[i]! * brightness));
}

/** Keras's standardize after the preprocessing function: rescale, samplewise, then featurewise. */
function standardize(x: Float32Array, channels: number, rescale: number, n: Normalization): void {
  if (rescale !== 1) for (let i = 0; i < x.length; i++) x[i] = x[i]! * rescale;
  if (n.samplewiseCenter || n.samplewiseStd) {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += x[i]!;
    const mean = sum / x.length;
    if (n.samplewiseCenter) for (let i = 0; i < x.length; i++) x[i] = x[i]! - mean;
    if (n.samplewiseStd) {
      const m = n.samplewiseCenter ? 0 : mean;
      let sq = 0;
      for (let i = 0; i < x.length; i++) sq += (x[i]! - m) ** 2;
      const inv = 1 / (Math.sqrt(sq / x.length) + 1e-6);
      for (let i = 0; i < x.length; i++) x[i] = x[i]! * inv;
    }
  }
  if (n.mean) for (let i = 0; i < x.length; i++) x[i] = x[i]! - n.mean[i % channels]!;
  if (n.std) for (let i = 0; i < x.length; i++) x[i] = x[i]! / (n.std[i % channels]! + 1e-6);
  if (n.zca) {
    if (zcaScratch.length !== x.length) zcaScratch = new Float64Array(x.length);
    whiten(x, new Float32Array(n.zca), zcaScratch);
  }
}

let zcaScratch = new Float64Array(0);

const preprocessors = new Map<string, Promise<Preprocess>>();
function loadPreprocess(url: string): Promise<Preprocess> {
  let fn = preprocessors.get(url);
  if (!fn) {
    fn = import(url).then((m: { default?: unknown }) => {
      if (typeof m.default !== 'function') throw new Error(`preprocessing module ${url} has no default-exported function`);
      return m.default as Preprocess;
    });
    preprocessors.set(url, fn);
  }
  return fn;
}

const cacheFds = new Map<string, number>();
let cacheRow = new Uint8Array(0);

function readCacheRow(file: string, offset: number, size: number): Uint8Array {
  let fd = cacheFds.get(file);
  if (fd === undefined) {
    fd = openSync(file, 'r');
    cacheFds.set(file, fd);
  }
  if (cacheRow.length < size) cacheRow = new Uint8Array(size);
  const row = cacheRow.subarray(0, size);
  let done = 0;
  while (done < size) {
    const n = readSync(fd, row, done, size - done, offset + done);
    if (n === 0) throw new Error(`pixel cache ${file} ends before byte ${offset + size}`);
    done += n;
  }
  return row;
}

export default async function decodeTask(task: DecodeTask): Promise<DecodeResult> {
  if (task.crashOnAttempt !== undefined && task.crashOnAttempt >= task.attempt) process.exit(70);
  if (task.jitterMs) await new Promise((r) => setTimeout(r, Math.random() * task.jitterMs!));
  const { image, augment, normalization, source } = task;
  const sampleSize = image.height * image.width * image.channels;
  const dst = task.dtype === 'uint8' ? new Uint8ClampedArray(task.target) : new Float32Array(task.target);
  const cache = task.cacheTarget ? new Uint8Array(task.cacheTarget) : null;
  const preprocess = augment.preprocessingFunction ? await loadPreprocess(augment.preprocessingFunction) : null;
  const standardizes =
    preprocess !== null || normalization.samplewiseCenter || normalization.samplewiseStd || normalization.mean !== null || normalization.std !== null || normalization.zca !== null;
  const failures: DecodeFailure[] = [];
  const spec: WarpSpec = {
    height: image.height,
    width: image.width,
    channels: image.channels,
    fillMode: augment.fillMode,
    cval: augment.cval,
    order: augment.interpolationOrder,
    flipHorizontal: false,
    flipVertical: false,
  };
  for (let i = 0; i < task.samples.length; i++) {
    const sample = task.samples[i]!;
    const offset = (task.position + i) * sampleSize;
    let pixels: Pixels;
    try {
      if (source.kind === 'files') {
        const crop = image.randomCrop ? await cropFor(`${source.root}/${source.paths[i]!}`, image, task.seed, task.epoch, sample) : null;
        pixels = await decodeFile(`${source.root}/${source.paths[i]!}`, image, crop);
      } else if (source.kind === 'cache') {
        const error = source.errors[i];
        if (error) throw new Error(error);
        pixels = readCacheRow(source.file, source.offsets[i]!, sampleSize);
      } else {
        pixels = source.dtype === 'uint8' ? new Uint8Array(source.data, sample * sampleSize, sampleSize) : new Float32Array(source.data, sample * sampleSize * 4, sampleSize);
      }
    } catch (error) {
      const path = source.kind === 'files' ? `${source.root}/${source.paths[i]!}` : source.kind === 'cache' ? source.paths[i]! : `sample ${sample}`;
      failures.push({ position: task.position + i, path, reason: (error as Error).message });
      dst.fill(0, offset, offset + sampleSize);
      cache?.fill(0, offset, offset + sampleSize);
      continue;
    }
    if (cache) cache.set(pixels, offset);
    const p = drawParams(augment, task.seed, task.epoch, sample, image.height, image.width);
    spec.flipHorizontal = p.flipHorizontal;
    spec.flipVertical = p.flipVertical;
    const m = kerasAffine(p, image.height, image.width, augment.keras);
    const simple = p.channelShift === 0 && p.brightness === 1 && !standardizes;
    warpInto(pixels, m, spec, dst, offset, simple ? augment.rescale : 1);
    if (simple) continue;
    channelShiftAndBrightness(dst, offset, sampleSize, p.channelShift, p.brightness);
    if (dst instanceof Float32Array) {
      const x = dst.subarray(offset, offset + sampleSize);
      if (preprocess) preprocess(x, [image.height, image.width, image.channels]);
      standardize(x, image.channels, augment.rescale, normalization);
    }
  }
  return { failures };
}

async function cropFor(path: string, image: ImageSpec, seed: number, epoch: number, sample: number) {
  const meta = await sharp(path, { limitInputPixels: image.pixelLimit }).metadata();
  if (!meta.width || !meta.height) throw new Error('image has no dimensions');
  return cropBox(meta.width, meta.height, image.randomCrop!, new CounterRng(seed, epoch, sample, Stream.crop));
}
