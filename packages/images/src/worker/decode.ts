/**
 * The pool's worker entry: decodes with sharp (libvips), resizes, augments in JavaScript and writes
 * float32 pixels straight into the shared batch slot. One file, one default export, as piscina
 * expects.
 */
import sharp from 'sharp';
import { drawParams } from '../augment.js';
import type { DecodeFailure, DecodeResult, DecodeTask, ImageSpec } from '../protocol.js';
import { kerasAffine } from '../transforms/affine.js';
import { type WarpSpec, warpInto } from '../transforms/warp.js';

// Each worker is one of N parallel decoders: libvips' own thread pool per image would oversubscribe
// the cores (workers × libvips threads), and its operation cache only grows memory here.
sharp.concurrency(Number(process.env.FEATHERSTACK_VIPS_THREADS ?? 1));
sharp.cache(false);

const KERNELS = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3' } as const;

async function decode(path: string, image: ImageSpec): Promise<Uint8Array> {
  let pipeline = sharp(path, { limitInputPixels: image.pixelLimit, failOn: 'error' });
  if (image.colorMode === 'grayscale') pipeline = pipeline.removeAlpha().toColourspace('b-w');
  else if (image.colorMode === 'rgb') pipeline = pipeline.removeAlpha().toColourspace('srgb');
  else pipeline = pipeline.ensureAlpha().toColourspace('srgb');
  // No metadata() round trip to skip same-size resizes: libvips treats a resize to the input's own
  // size as a no-op, and the extra call cost ~25 % of throughput on small images.
  pipeline = pipeline.resize(image.width, image.height, {
    fit: image.keepAspectRatio ? 'cover' : 'fill',
    position: 'centre',
    kernel: KERNELS[image.interpolation],
  });
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== image.channels || info.width !== image.width || info.height !== image.height) {
    throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${image.width}×${image.height}×${image.channels}`);
  }
  return data;
}

function postProcess(dst: Float32Array, offset: number, size: number, channelShift: number, brightness: number, rescale: number): void {
  if (channelShift !== 0) {
    // Keras: clip(x + intensity, min(x), max(x)) over the whole image.
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = offset; i < offset + size; i++) {
      const v = dst[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    for (let i = offset; i < offset + size; i++) dst[i] = Math.min(hi, Math.max(lo, dst[i]! + channelShift));
  }
  for (let i = offset; i < offset + size; i++) {
    const v = brightness === 1 ? dst[i]! : Math.min(255, Math.max(0, dst[i]! * brightness));
    dst[i] = v * rescale;
  }
}

export default async function decodeTask(task: DecodeTask): Promise<DecodeResult> {
  if (task.jitterMs) await new Promise((r) => setTimeout(r, Math.random() * task.jitterMs!));
  const { image, augment } = task;
  const sampleSize = image.height * image.width * image.channels;
  const dst = new Float32Array(task.target, task.byteOffset);
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
  for (let i = 0; i < task.paths.length; i++) {
    const rel = task.paths[i]!;
    const path = `${task.root}/${rel}`;
    const offset = (task.position + i) * sampleSize;
    let pixels: Uint8Array;
    try {
      pixels = await decode(path, image);
    } catch (error) {
      failures.push({ position: task.position + i, path, reason: (error as Error).message });
      dst.fill(0, offset, offset + sampleSize);
      continue;
    }
    const p = drawParams(augment, task.seed, task.epoch, task.samples[i]!, image.height, image.width);
    spec.flipHorizontal = p.flipHorizontal;
    spec.flipVertical = p.flipVertical;
    const m = kerasAffine(p, image.height, image.width, augment.keras);
    const simple = p.channelShift === 0 && p.brightness === 1;
    warpInto(pixels, m, spec, dst, offset, simple ? augment.rescale : 1);
    if (!simple) postProcess(dst, offset, sampleSize, p.channelShift, p.brightness, augment.rescale);
  }
  return { failures };
}
