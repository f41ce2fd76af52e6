/**
 * The pool's worker entry. For each sample of a task: load uint8 (or float) pixels at the flow's
 * size — decoding the file with sharp (libvips), reading a pixel-cache row, or viewing an in-memory
 * array — then augment in JavaScript and write straight into the shared batch slot. One file, one
 * default export, as piscina expects.
 */
import { openSync, readFileSync, readSync } from 'node:fs';
import { parentPort, threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { drawParams } from '../augment.js';
import type { CacheEncoding } from '../cache.js';
import { decodeJpegNative } from '../decoders/jpeg.js';
import { loadPixels, type PixelScratch } from '../load.js';
import { type DecodeFailure, type DecodeResult, type DecodeTask, type ImageSpec, LOADED, type Normalization } from './protocol.js';
import { CounterRng, Stream } from '@featherstack/common';
import { kerasAffine } from '../transforms/affine.js';
import { brightness, channelShift, kerasBrightness } from '../transforms/color.js';
import { type WarpSpec, warpInto } from '../transforms/warp.js';
import { preprocessInput } from '../transforms/preprocess-input.js';
import { whiten } from '../transforms/zca.js';

// Each worker is one of N parallel decoders: libvips' own thread pool per image would oversubscribe
// the cores (workers × libvips threads), and its operation cache only grows memory here.
sharp.concurrency(Number(process.env.FEATHERSTACK_VIPS_THREADS ?? 1));
sharp.cache(false);

// Tells the pool this thread has finished loading its modules (see DecodePool.close): Node aborts
// the whole process when a worker is terminated while it is still instantiating them. Posted as a
// microtask: piscina require()s this file, and Node is still wrapping the evaluated module for
// require() when its top level returns; it runs once require() has returned (and not on a later
// turn of the event loop, which piscina's Atomics.wait loop blocks until the first task).
queueMicrotask(() => parentPort?.postMessage({ [LOADED]: threadId }));

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
/** This worker's decode buffers, reused from image to image (it runs one task at a time). */
const scratch: PixelScratch = { decoded: { bytes: new Uint8Array(0) }, pixels: null };

function readCacheRow(file: string, offset: number, size: number, crc: number): Uint8Array {
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
  if (crc32(row) !== crc)
    throw new Error(
      `pixel cache ${file}: the pixels at byte ${offset} fail their CRC-32 (changed after the cache was written); delete the cache to rebuild it`,
    );
  return row;
}

/** An encoded cache row: the image at the flow's size, decoded (PNG gives back the very pixels). */
async function decodeCacheRow(bytes: Buffer, image: ImageSpec, file: string, offset: number): Promise<Uint8Array> {
  // A JPEG row through libjpeg-turbo directly where it is built (a gray row decodes to one channel).
  const fast = decodeJpegNative(bytes, Number.POSITIVE_INFINITY, scratch.decoded);
  if (fast && fast.width === image.width && fast.height === image.height && fast.channels === image.channels) return fast.data as Uint8Array;
  // A one-channel row may come back as three equal channels: its first is the row.
  const decoder = sharp(bytes, { failOn: 'error' });
  const { data, info } = await (image.channels === 1 ? decoder.extractChannel(0) : decoder).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== image.width || info.height !== image.height || info.channels !== image.channels)
    throw new Error(
      `pixel cache ${file}: the image at byte ${offset} decodes to ${info.width}×${info.height}×${info.channels}, not the flow's ${image.width}×${image.height}×${image.channels}; delete the cache to rebuild it`,
    );
  return data;
}

/** Un-augmented pixels at the flow's size, encoded for an encoded pixel cache. */
function encodeCacheRow(pixels: Uint8Array, image: ImageSpec, encoding: CacheEncoding): Promise<Buffer> {
  const input = sharp(Buffer.from(pixels), { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 3 | 4 } });
  // One channel stays one (libvips would otherwise write it as sRGB).
  const raw = image.channels === 1 ? input.toColourspace('b-w') : input;
  // zlib level 1: the encoding shares the first epoch's decode time (see the README's cache sizes).
  return encoding.kind === 'png'
    ? raw.png({ compressionLevel: 1, adaptiveFiltering: true }).toBuffer()
    : raw.jpeg({ quality: encoding.kind === 'jpeg' ? encoding.quality : 90, mozjpeg: false }).toBuffer();
}

export default async function decodeTask(task: DecodeTask): Promise<DecodeResult> {
  if (task.crashOnAttempt !== undefined && task.crashOnAttempt >= task.attempt) process.exit(70);
  if (task.jitterMs) await new Promise((r) => setTimeout(r, Math.random() * task.jitterMs!));
  const { image, augment, normalization, source } = task;
  const sampleSize = image.height * image.width * image.channels;
  const dst = task.dtype === 'uint8' ? new Uint8ClampedArray(task.target) : new Float32Array(task.target);
  const cache = task.cacheTarget ? new Uint8Array(task.cacheTarget) : null;
  const encoded: Uint8Array[] | null = task.cacheEncoding ? [] : null;
  const preprocess = augment.preprocessingFunction ? await loadPreprocess(augment.preprocessingFunction) : null;
  const standardizes =
    preprocess !== null ||
    augment.preprocess !== 'none' ||
    normalization.samplewiseCenter ||
    normalization.samplewiseStd ||
    normalization.mean !== null ||
    normalization.std !== null ||
    normalization.zca !== null;
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
    // Encoded images (files, pack bytes) are cropped before resizing, by the sample's own draw.
    const crop = image.randomCrop
      ? (w: number, h: number) => cropBox(w, h, image.randomCrop!, new CounterRng(task.seed, task.epoch, sample, Stream.crop))
      : null;
    let pixels: Pixels;
    try {
      if (source.kind === 'files') {
        // Reading the file here and handing the decoder the bytes measured ~11 % faster than libvips'
        // own file input for 500×375 JPEGs; this is a worker thread, so the synchronous read blocks nothing.
        const bytes = readFileSync(`${source.root}/${source.paths[i]!}`);
        pixels = await loadPixels(bytes, image, crop, scratch);
      } else if (source.kind === 'bytes') {
        // A copy: the decoders get a Buffer of their own, as for a file read.
        const bytes = Buffer.from(new Uint8Array(source.data, source.offsets[i]!, source.lengths[i]!));
        // A tar shard carries no CRC (-1): its bytes are decoded as read.
        if (source.crcs[i]! >= 0 && crc32(bytes) !== source.crcs[i])
          throw new Error('its bytes fail their CRC-32 (the pack changed after it was written); repack it');
        pixels = await loadPixels(bytes, image, crop, scratch);
      } else if (source.kind === 'cache') {
        const error = source.errors[i];
        if (error) throw new Error(error);
        const file = source.files?.[i] ?? source.file;
        if (source.encoded) {
          const row = readCacheRow(file, source.offsets[i]!, source.encoded.lengths[i]!, source.crcs[i]!);
          pixels = await decodeCacheRow(Buffer.from(row), image, file, source.offsets[i]!);
        } else pixels = readCacheRow(file, source.offsets[i]!, sampleSize, source.crcs[i]!);
      } else {
        pixels =
          source.dtype === 'uint8'
            ? new Uint8Array(source.data, sample * sampleSize, sampleSize)
            : new Float32Array(source.data, sample * sampleSize * 4, sampleSize);
      }
    } catch (error) {
      const path = source.kind === 'files' ? `${source.root}/${source.paths[i]!}` : source.kind === 'array' ? `sample ${sample}` : source.paths[i]!;
      failures.push({ position: task.position + i, path, reason: (error as Error).message });
      dst.fill(0, offset, offset + sampleSize);
      cache?.fill(0, offset, offset + sampleSize);
      encoded?.push(new Uint8Array(0));
      continue;
    }
    if (cache) cache.set(pixels, offset);
    if (encoded) encoded.push(await encodeCacheRow(pixels as Uint8Array, image, task.cacheEncoding!));
    const p = drawParams(augment, task.seed, task.epoch, sample, image.height, image.width);
    spec.flipHorizontal = p.flipHorizontal;
    spec.flipVertical = p.flipVertical;
    const m = kerasAffine(p, image.height, image.width, augment.keras);
    // Keras applies its brightness step whenever brightness_range is set, even at a factor of 1.
    const kerasBright = augment.keras && augment.brightnessRange !== null;
    const simple = p.channelShift === 0 && p.brightness === 1 && !kerasBright && !standardizes;
    warpInto(pixels, m, spec, dst, offset, simple ? augment.rescale : 1);
    if (simple) continue;
    if (p.channelShift !== 0) channelShift(dst, offset, sampleSize, p.channelShift);
    if (kerasBright) kerasBrightness(dst, offset, sampleSize, p.brightness, image.channels);
    else if (p.brightness !== 1) brightness(dst, offset, sampleSize, p.brightness);
    if (dst instanceof Float32Array) {
      const x = dst.subarray(offset, offset + sampleSize);
      if (preprocess) preprocess(x, [image.height, image.width, image.channels]);
      preprocessInput(x, image.channels, augment.preprocess);
      standardize(x, image.channels, augment.rescale, normalization);
    }
  }
  return encoded ? { failures, encoded } : { failures };
}
