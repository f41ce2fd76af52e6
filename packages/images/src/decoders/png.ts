/**
 * PNG decoded as Pillow decodes it, for every layout the format has: bit depths 1–16 in every colour
 * type, Adam7 interlacing, palette and tRNS transparency. Decoding in the worker beats libvips for
 * small images (its per-image set-up and the hop to libuv's pool cost more than the inflate), and
 * it is the only way to get Pillow's results where libvips differs: a 16-bit grayscale PNG is
 * Pillow's mode I;16 (values 0–65535, which Keras keeps), where libvips keeps the high byte.
 * Pillow ignores gAMA, cHRM, sRGB and iCCP for pixel values, and so does this decoder.
 * @internal
 */
import { inflateSync } from 'node:zlib';
import type { DecodedImage } from './image.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Samples per pixel by colour type: gray, RGB, palette index, gray + alpha, RGBA. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** Adam7 passes: x0, y0, dx, dy. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

export function isPng(buf: Uint8Array): boolean {
  return buf.length >= 8 && SIGNATURE.every((b, i) => buf[i] === b);
}

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

/** Undoes the scanline filters of `rows` rows of `stride` bytes starting at `raw[offset]`. */
function unfilter(raw: Uint8Array, offset: number, stride: number, rows: number, bpp: number): Uint8Array {
  const out = new Uint8Array(stride * rows);
  for (let y = 0; y < rows; y++) {
    const filter = raw[offset + y * (stride + 1)]!;
    const src = offset + y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[row + x - bpp]! : 0;
      const b = y > 0 ? out[prev + x]! : 0;
      const c = x >= bpp && y > 0 ? out[prev + x - bpp]! : 0;
      const v = raw[src + x]!;
      switch (filter) {
        case 0:
          out[row + x] = v;
          break;
        case 1:
          out[row + x] = v + a;
          break;
        case 2:
          out[row + x] = v + b;
          break;
        case 3:
          out[row + x] = v + ((a + b) >> 1);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          out[row + x] = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new Error(`PNG scanline ${y} has unknown filter type ${filter}`);
      }
    }
  }
  return out;
}

/** Decodes `buf`. Throws, with the reason, on a damaged or unsupported file. */
export function decodePng(buf: Buffer, pixelLimit: number): DecodedImage {
  let pos = 8;
  let header: Header | null = null;
  let palette: Buffer | null = null;
  let trns: Buffer | null = null;
  const idat: Buffer[] = [];
  let ended = false;
  while (pos + 8 <= buf.length) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const start = pos + 8;
    if (start + length + 4 > buf.length) throw new Error(`PNG chunk ${type} is truncated`);
    const chunk = buf.subarray(start, start + length);
    pos = start + length + 4; // skip the CRC
    if (type === 'IHDR') {
      if (chunk.length < 13) throw new Error(`PNG IHDR chunk is ${chunk.length} bytes, not 13`);
      header = { width: chunk.readUInt32BE(0), height: chunk.readUInt32BE(4), depth: chunk[8]!, colorType: chunk[9]!, interlaced: chunk[12] === 1 };
      if (!(header.colorType in SAMPLES) || !DEPTHS[header.colorType]!.includes(header.depth)) {
        throw new Error(`PNG has an invalid bit depth ${header.depth} for colour type ${header.colorType}`);
      }
      if (header.width === 0 || header.height === 0) throw new Error('PNG has zero width or height');
      if (header.width * header.height > pixelLimit) throw new Error('Input image exceeds pixel limit');
    } else if (type === 'PLTE') palette = chunk;
    else if (type === 'tRNS') trns = chunk;
    else if (type === 'IDAT') idat.push(chunk);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
  }
  if (!header) throw new Error('PNG has no IHDR chunk');
  if (!ended || idat.length === 0) throw new Error('PNG is truncated (no IEND or no image data)');
  const { width, height, depth, colorType } = header;
  const samples = SAMPLES[colorType]!;
  const bitsPerPixel = samples * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (trns && ((colorType === 0 && trns.length < 2) || (colorType === 2 && trns.length < 6)))
    throw new Error(`PNG tRNS chunk of ${trns.length} bytes is too short for colour type ${colorType}`);
  // The inflated size is known from the header: stop there, so a damaged or hostile stream cannot
  // inflate to gigabytes before the size check.
  const passes = header.interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const);
  let expected = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw > 0 && ph > 0) expected += (Math.ceil((pw * bitsPerPixel) / 8) + 1) * ph;
  }
  let raw: Buffer;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat), { maxOutputLength: Math.max(expected, 1) });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new Error(`PNG image data inflates to more than the ${expected} bytes its header describes`);
    throw new Error(`PNG image data does not inflate: ${(error as Error).message}`);
  }
  if (raw.length < expected) throw new Error(`PNG image data is short: ${raw.length} of ${expected} bytes`);
  // 8-bit and not interlaced (the common case): the unfiltered scanlines are the samples already.
  if (depth === 8 && !header.interlaced) return toImage(unfilter(raw, 0, width * samples, height, bpp), header, palette, trns);
  // Every sample as a number, row-major, before palette expansion or transparency.
  const values = depth === 16 ? new Uint16Array(width * height * samples) : new Uint8Array(width * height * samples);
  let offset = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    const rows = unfilter(raw, offset, stride, ph, bpp);
    offset += (stride + 1) * ph;
    for (let py = 0; py < ph; py++) {
      const row = py * stride;
      const out = ((y0 + py * dy) * width + x0) * samples;
      for (let px = 0; px < pw; px++) {
        const o = out + px * dx * samples;
        for (let s = 0; s < samples; s++) {
          const i = px * samples + s;
          let v: number;
          if (depth === 8) v = rows[row + i]!;
          else if (depth === 16) v = (rows[row + 2 * i]! << 8) | rows[row + 2 * i + 1]!;
          else {
            const bit = i * depth;
            v = (rows[row + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
          }
          values[o + s] = v;
        }
      }
    }
  }
  return toImage(values, header, palette, trns);
}

/** Pillow's modes: gray below 8 bits scaled to 0–255; 16-bit colour to its high byte; palette expanded. */
function toImage(values: Uint8Array | Uint16Array, header: Header, palette: Buffer | null, trns: Buffer | null): DecodedImage {
  const { width, height, depth, colorType } = header;
  const n = width * height;
  if (colorType === 3) {
    if (!palette) throw new Error('palette PNG has no PLTE chunk');
    // Pillow: indices past tRNS's end stay opaque; tRNS makes the palette RGBA.
    const channels = trns ? 4 : 3;
    const data = new Uint8Array(n * channels);
    for (let i = 0; i < n; i++) {
      const index = values[i]!;
      const k = index * 3;
      if (k + 2 >= palette.length) throw new Error(`PNG palette index ${index} is out of range (${palette.length / 3} colours)`);
      const o = i * channels;
      data[o] = palette[k]!;
      data[o + 1] = palette[k + 1]!;
      data[o + 2] = palette[k + 2]!;
      if (trns) data[o + 3] = index < trns.length ? trns[index]! : 255;
    }
    return { data, width, height, channels };
  }
  if (colorType === 0 && depth === 16) return { data: values as Uint16Array, width, height, channels: 1 };
  const samples = SAMPLES[colorType]!;
  const scale = depth < 8 ? 255 / ((1 << depth) - 1) : 1;
  const data = depth === 16 ? new Uint8Array(values.length) : (values as Uint8Array);
  if (depth === 16) for (let i = 0; i < values.length; i++) data[i] = values[i]! >> 8;
  else if (scale !== 1) for (let i = 0; i < values.length; i++) data[i] = values[i]! * scale;
  // tRNS on gray or RGB: Pillow's convert to RGBA makes the one matching colour transparent; it
  // compares the stored pixel with the chunk's raw value.
  if (trns && (colorType === 0 || colorType === 2)) {
    const key = colorType === 0 ? [trns.readUInt16BE(0)] : [trns.readUInt16BE(0), trns.readUInt16BE(2), trns.readUInt16BE(4)];
    const channels = samples + 1;
    const out = new Uint8Array(n * channels);
    for (let i = 0; i < n; i++) {
      let match = true;
      for (let s = 0; s < samples; s++) {
        const v = data[i * samples + s]!;
        out[i * channels + s] = v;
        if (v !== key[s]) match = false;
      }
      out[i * channels + samples] = match ? 0 : 255;
    }
    return { data: out, width, height, channels: channels as 2 | 4 };
  }
  return { data, width, height, channels: samples as 1 | 2 | 3 | 4 };
}
