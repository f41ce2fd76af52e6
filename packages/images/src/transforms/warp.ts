/**
 * Resampling of an HWC image through an affine map, in plain JavaScript: on small and mid-sized
 * images it beats a libvips round trip (measured: ~1,230 images/s per core at 224² vs ~455/s for
 * sharp's affine() on two cores) because it writes straight into the destination batch slot.
 *
 * Semantics are scipy.ndimage.affine_transform's with order 1 (linear) or 0 (nearest), which Keras
 * uses: the output pixel (r, c) samples the input at M·(r, c) + offset; out-of-range coordinates
 * are resolved by the fill mode.
 * @internal
 */
import type { Affine } from './affine.js';

export type FillMode = 'constant' | 'nearest' | 'reflect' | 'wrap';

/** Maps a possibly out-of-range integer index into [0, n) for the fill mode; -1 means "use cval". */
function resolveIndex(i: number, n: number, mode: FillMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'nearest':
      return i < 0 ? 0 : n - 1;
    case 'constant':
      return -1;
    case 'reflect': {
      // scipy 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a
      if (n === 1) return 0;
      const period = 2 * n;
      let k = ((i % period) + period) % period;
      if (k >= n) k = period - 1 - k;
      return k;
    }
    case 'wrap':
      // Coordinates were already wrapped by wrapCoordinate(); this only serves the zero-weight
      // neighbour of a coordinate that landed exactly on the last sample.
      return ((i % n) + n) % n;
  }
}

/**
 * scipy.ndimage's 'wrap' (what Keras's fill_mode='wrap' gets): the coordinate is wrapped with
 * period n - 1, so the first and last samples overlap (scipy's NI_EXTEND_WRAP).
 */
function wrapCoordinate(x: number, n: number): number {
  if (n <= 1) return 0;
  const sz = n - 1;
  if (x < 0) return x + sz * (Math.trunc(-x / sz) + 1);
  if (x > sz) return x - sz * Math.trunc(x / sz);
  return x;
}

export interface WarpSpec {
  height: number;
  width: number;
  channels: number;
  fillMode: FillMode;
  cval: number;
  /** 1: linear, 0: nearest. */
  order: 0 | 1;
  flipHorizontal: boolean;
  flipVertical: boolean;
}

/**
 * Warps `src` (uint8 or float32 HWC) into `dst` (float32, or uint8 rounded and clamped, HWC at `dstOffset`), multiplying by `scale` on the
 * way (Keras applies rescale after the warp; the affine sampling is linear, so the order does not
 * change the result beyond float rounding).
 * Flips are applied to the warped image (Keras flips after the affine step) by mirroring the
 * output coordinate.
 */
export function warpInto(
  src: Uint8Array | Float32Array,
  m: Affine | undefined,
  spec: WarpSpec,
  dst: Float32Array | Uint8ClampedArray,
  dstOffset: number,
  scale: number,
): void {
  const { height: h, width: w, channels: ch, fillMode, order } = spec;
  const flipH = spec.flipHorizontal;
  const flipV = spec.flipVertical;
  if (!m) {
    for (let r = 0; r < h; r++) {
      const sr = flipV ? h - 1 - r : r;
      for (let c = 0; c < w; c++) {
        const base = (sr * w + (flipH ? w - 1 - c : c)) * ch;
        const out = dstOffset + (r * w + c) * ch;
        for (let k = 0; k < ch; k++) dst[out + k] = src[base + k]! * scale;
      }
    }
    return;
  }
  const [m0, m1, m2, m3, m4, m5] = m as unknown as [number, number, number, number, number, number];
  const wrap = fillMode === 'wrap';
  const clampEdges = fillMode === 'nearest';
  const rowStride = w * ch;
  const hm = h - 1;
  const wm = w - 1;
  // The input coordinate moves by a constant step along an output row (flips reverse the step).
  const c0 = flipH ? wm : 0;
  const dc = flipH ? -1 : 1;
  const dy = m1 * dc;
  const dx = m4 * dc;
  let out = dstOffset;
  for (let r = 0; r < h; r++) {
    const sr = flipV ? hm - r : r;
    let yRow = m0 * sr + m1 * c0 + m2;
    let xRow = m3 * sr + m4 * c0 + m5;
    for (let c = 0; c < w; c++, out += ch, yRow += dy, xRow += dx) {
      let y = yRow;
      let x = xRow;
      if (wrap) {
        y = wrapCoordinate(y, h);
        x = wrapCoordinate(x, w);
      }
      const interior = y >= 0 && x >= 0 && y < hm && x < wm;
      if (order === 1 && (interior || clampEdges)) {
        // Interior pixels (almost all) have four neighbours; with fill mode 'nearest' an edge
        // pixel only needs its neighbour indices clamped (scipy's 'nearest' extension).
        const yf = Math.floor(y);
        const xf = Math.floor(x);
        const fy = y - yf;
        const fx = x - xf;
        const w11 = fx * fy;
        const w10 = fy - w11;
        const w01 = fx - w11;
        const w00 = 1 - fx - fy + w11;
        let i00: number;
        let i01: number;
        let i10: number;
        let i11: number;
        if (interior) {
          i00 = yf * rowStride + xf * ch;
          i01 = i00 + ch;
          i10 = i00 + rowStride;
          i11 = i10 + ch;
        } else {
          const ya = clamp(yf, hm);
          const yb = clamp(yf + 1, hm);
          const xa = clamp(xf, wm);
          const xb = clamp(xf + 1, wm);
          i00 = ya * rowStride + xa * ch;
          i01 = ya * rowStride + xb * ch;
          i10 = yb * rowStride + xa * ch;
          i11 = yb * rowStride + xb * ch;
        }
        if (ch === 3) {
          dst[out] = (src[i00]! * w00 + src[i01]! * w01 + src[i10]! * w10 + src[i11]! * w11) * scale;
          dst[out + 1] = (src[i00 + 1]! * w00 + src[i01 + 1]! * w01 + src[i10 + 1]! * w10 + src[i11 + 1]! * w11) * scale;
          dst[out + 2] = (src[i00 + 2]! * w00 + src[i01 + 2]! * w01 + src[i10 + 2]! * w10 + src[i11 + 2]! * w11) * scale;
        } else {
          for (let k = 0; k < ch; k++) dst[out + k] = (src[i00 + k]! * w00 + src[i01 + k]! * w01 + src[i10 + k]! * w10 + src[i11 + k]! * w11) * scale;
        }
        continue;
      }
      edgePixel(src, y, x, spec, dst, out, scale);
    }
  }
}

function clamp(i: number, max: number): number {
  return Math.max(0, Math.min(i, max));
}

/** A pixel whose neighbours leave the image (or any pixel with order 0): fill-mode rules apply. */
function edgePixel(
  src: Uint8Array | Float32Array,
  y: number,
  x: number,
  spec: WarpSpec,
  dst: Float32Array | Uint8ClampedArray,
  out: number,
  scale: number,
): void {
  const { height: h, width: w, channels: ch, fillMode, cval } = spec;
  if (spec.order === 0) {
    const yi = resolveIndex(Math.round(y), h, fillMode);
    const xi = resolveIndex(Math.round(x), w, fillMode);
    for (let k = 0; k < ch; k++) dst[out + k] = (yi < 0 || xi < 0 ? cval : src[(yi * w + xi) * ch + k]!) * scale;
    return;
  }
  if (fillMode === 'constant' && (y < 0 || y > h - 1 || x < 0 || x > w - 1)) {
    // scipy's 'constant' performs no interpolation beyond the edge samples.
    for (let k = 0; k < ch; k++) dst[out + k] = cval * scale;
    return;
  }
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const fy = y - y0;
  const fx = x - x0;
  const ya = resolveIndex(y0, h, fillMode);
  const yb = resolveIndex(y0 + 1, h, fillMode);
  const xa = resolveIndex(x0, w, fillMode);
  const xb = resolveIndex(x0 + 1, w, fillMode);
  for (let k = 0; k < ch; k++) {
    const p00 = ya < 0 || xa < 0 ? cval : src[(ya * w + xa) * ch + k]!;
    const p01 = ya < 0 || xb < 0 ? cval : src[(ya * w + xb) * ch + k]!;
    const p10 = yb < 0 || xa < 0 ? cval : src[(yb * w + xa) * ch + k]!;
    const p11 = yb < 0 || xb < 0 ? cval : src[(yb * w + xb) * ch + k]!;
    dst[out + k] = ((p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy) * scale;
  }
}
