/**
 * Pillow's convolution resize (Image.resize with BOX, BILINEAR, HAMMING, BICUBIC or LANCZOS), reimplemented
 * to the bit so that Keras's `load_img(..., interpolation=...)` is reproduced exactly: separable
 * passes (horizontal, then vertical over the rows it needs), filter support widened by the
 * downscale factor (antialiasing), coefficients normalised and rounded to 22-bit fixed point,
 * sums rounded by adding half and shifting, then clipped to 0–255. RGBA is resized premultiplied,
 * as Pillow does (RGBA → RGBa → resize → RGBA).
 * @internal
 */

export type ResampleFilter = 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const FILTERS: Record<ResampleFilter, { support: number; f: (x: number) => number }> = {
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  hamming: {
    support: 1,
    f: (x) => {
      const t = Math.abs(x);
      if (t === 0) return 1;
      if (t >= 1) return 0;
      const px = t * Math.PI;
      return (Math.sin(px) / px) * (0.54 + 0.46 * Math.cos(px));
    },
  },
  bilinear: {
    support: 1,
    f: (x) => {
      const t = Math.abs(x);
      return t < 1 ? 1 - t : 0;
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

interface Coefficients {
  ksize: number;
  /** [first source index, count] per output sample. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output sample. */
  k: Float64Array;
}

function coefficients(inSize: number, in0: number, in1: number, outSize: number, filter: ResampleFilter): Coefficients {
  const { support: base, f } = FILTERS[filter];
  const scale = (Math.fround(in1) - Math.fround(in0)) / outSize;
  const filterScale = Math.max(1, scale);
  const support = base * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Float64Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      weights[x] = f((x + xmin - center + 0.5) * ss);
      ww += weights[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? weights[x]! / ww : weights[x]!;
      // normalize_coeffs_8bpc: round half away from zero, truncate to int.
      k[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, k };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : Math.min(v, 255);
}

/** Pillow's MULDIV255: a·b / 255 rounded, in integers. */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** A region of the source, in pixels (fractional edges allowed, as Pillow's box). */
interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** One horizontal pass over rows [first, first + rows) of `src`: outW samples per row. */
function horizontalPass(
  src: Uint8Array,
  width: number,
  channels: number,
  first: number,
  rows: number,
  x0: number,
  x1: number,
  outW: number,
  filter: ResampleFilter,
): Uint8Array {
  const hor = coefficients(width, x0, x1, outW, filter);
  const out = new Uint8Array(outW * rows * channels);
  for (let yy = 0; yy < rows; yy++) {
    const srcRow = (yy + first) * width * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = hor.bounds[xx * 2]!;
      const xmax = hor.bounds[xx * 2 + 1]!;
      const kb = xx * hor.ksize;
      for (let c = 0; c < channels; c++) {
        let ss = HALF;
        for (let x = 0; x < xmax; x++) ss += src[srcRow + (x + xmin) * channels + c]! * hor.k[kb + x]!;
        out[(yy * outW + xx) * channels + c] = clip8(ss);
      }
    }
  }
  return out;
}

/** One vertical pass: `src` holds rows from `rowOffset` of an image `inH` rows high. */
function verticalPass(src: Uint8Array, width: number, channels: number, rowOffset: number, vert: Coefficients, outH: number): Uint8Array {
  const out = new Uint8Array(width * outH * channels);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vert.bounds[yy * 2]! - rowOffset;
    const ymax = vert.bounds[yy * 2 + 1]!;
    const kb = yy * vert.ksize;
    for (let xx = 0; xx < width; xx++) {
      for (let c = 0; c < channels; c++) {
        let ss = HALF;
        for (let y = 0; y < ymax; y++) ss += src[((y + ymin) * width + xx) * channels + c]! * vert.k[kb + y]!;
        out[(yy * width + xx) * channels + c] = clip8(ss);
      }
    }
  }
  return out;
}

/** Pillow's ImagingResample: horizontal pass over the rows the vertical pass needs, then vertical. */
function resample(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  box: Region,
  outW: number,
  outH: number,
  filter: ResampleFilter,
): Uint8Array {
  const x0 = box.left;
  const x1 = box.left + box.width;
  const y0 = box.top;
  const y1 = box.top + box.height;
  const needHorizontal = outW !== width || x0 !== 0 || x1 !== outW;
  const needVertical = outH !== height || y0 !== 0 || y1 !== outH;
  const vert = coefficients(height, y0, y1, outH, filter);
  const yFirst = vert.bounds[0]!;
  const yLast = vert.bounds[outH * 2 - 2]! + vert.bounds[outH * 2 - 1]!;
  let image = src;
  let rowOffset = 0;
  if (needHorizontal) {
    image = horizontalPass(src, width, channels, yFirst, yLast - yFirst, x0, x1, outW, filter);
    rowOffset = yFirst;
  }
  const imageW = needHorizontal ? outW : width;
  if (needVertical) return verticalPass(image, imageW, channels, rowOffset, vert, outH);
  return needHorizontal ? image : image.slice();
}

/**
 * Resizes `src` (HWC uint8, `channels` 1, 3 or 4) inside `box` to outW × outH as Pillow's
 * `Image.resize` does. An image more than 100× taller than wide whose height shrinks is resized
 * vertically first (full width), then horizontally, each pass rounded to 8 bits, as Pillow 10+ does.
 */
export function pilResize(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  box: Region,
  outW: number,
  outH: number,
  filter: ResampleFilter,
): Uint8Array {
  let input = src;
  if (channels === 4) {
    input = new Uint8Array(src.length);
    for (let i = 0; i < src.length; i += 4) {
      const a = src[i + 3]!;
      input[i] = mulDiv255(src[i]!, a);
      input[i + 1] = mulDiv255(src[i + 1]!, a);
      input[i + 2] = mulDiv255(src[i + 2]!, a);
      input[i + 3] = a;
    }
  }
  let out: Uint8Array;
  if (height > width * 100 && outH < height) {
    const tall = resample(input, width, height, channels, { left: 0, top: box.top, width, height: box.height }, width, outH, filter);
    out = resample(tall, width, outH, channels, { left: box.left, top: 0, width: box.width, height: outH }, outW, outH, filter);
  } else out = resample(input, width, height, channels, box, outW, outH, filter);
  if (channels === 4) {
    for (let i = 0; i < out.length; i += 4) {
      const a = out[i + 3]!;
      if (a === 0 || a === 255) continue;
      for (let c = 0; c < 3; c++) out[i + c] = Math.min(255, Math.trunc((255 * out[i + c]!) / a));
    }
  }
  return out;
}
