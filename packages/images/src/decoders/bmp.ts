/**
 * BMP as Pillow's BmpImagePlugin reads it (libvips has no BMP loader): OS/2 and Windows headers,
 * 1/4/8-bit palettes, 16-bit 5-5-5 and 5-6-5, 24-bit, 32-bit (alpha only where bit masks name it;
 * plain 32-bit is BGRX, as in Pillow), bottom-up and top-down rows. RLE compression is refused by
 * name. 5- and 6-bit channels widen as Pillow's unpackers do: trunc(v · 255 / 31) and / 63.
 * @internal
 */
import { checkPixelLimit, type DecodedImage } from './image.js';

export function isBmp(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d;
}

/** Pillow's supported 32-bit masks (r, g, b, a) → byte positions of R, G, B and A (−1: none). */
const MASKS_32: [number[], number[]][] = [
  [
    [0xff0000, 0xff00, 0xff, 0],
    [2, 1, 0, -1],
  ],
  [
    [0xff000000, 0xff0000, 0xff00, 0],
    [3, 2, 1, -1],
  ],
  [
    [0xff000000, 0xff00, 0xff, 0],
    [3, 1, 0, -1],
  ],
  [
    [0xff000000, 0xff0000, 0xff00, 0xff],
    [3, 2, 1, 0],
  ],
  [
    [0xff, 0xff00, 0xff0000, 0xff000000],
    [0, 1, 2, 3],
  ],
  [
    [0xff0000, 0xff00, 0xff, 0xff000000],
    [2, 1, 0, 3],
  ],
  [
    [0xff000000, 0xff00, 0xff, 0xff0000],
    [3, 1, 0, 2],
  ],
  [
    [0, 0, 0, 0],
    [2, 1, 0, 3],
  ],
];

export function decodeBmp(buf: Buffer, pixelLimit: number): DecodedImage {
  if (buf.length < 26) throw new Error('BMP is truncated (no header)');
  let dataOffset = buf.readUInt32LE(10);
  const headerSize = buf.readUInt32LE(14);
  let width: number;
  let height: number;
  let bits: number;
  let compression = 0;
  let colors = 0;
  let topDown = false;
  let paletteEntry = 4;
  let masks: number[] | null = null;
  if (headerSize === 12) {
    width = buf.readUInt16LE(18);
    height = buf.readUInt16LE(20);
    bits = buf.readUInt16LE(24);
    paletteEntry = 3;
  } else if ([40, 52, 56, 64, 108, 124].includes(headerSize)) {
    if (buf.length < 14 + headerSize) throw new Error('BMP is truncated (short header)');
    width = buf.readInt32LE(18);
    // Pillow tests the top byte only: 0xFF means a negative (top-down) height.
    topDown = buf[25] === 0xff;
    height = topDown ? 2 ** 32 - buf.readUInt32LE(22) : buf.readInt32LE(22);
    bits = buf.readUInt16LE(28);
    compression = buf.readUInt32LE(30);
    colors = buf.readUInt32LE(46);
    if (compression === 3) {
      if (headerSize >= 52) masks = [0, 1, 2].map((k) => buf.readUInt32LE(54 + 4 * k)).concat(headerSize >= 56 ? [buf.readUInt32LE(66)] : [0]);
      else {
        if (buf.length < 66) throw new Error('BMP is truncated (no bit masks)');
        masks = [0, 1, 2].map((k) => buf.readUInt32LE(54 + 4 * k)).concat([0]);
      }
    }
  } else throw new Error(`BMP header type ${headerSize} is not supported`);
  checkPixelLimit('BMP', width, height, pixelLimit);
  if (compression === 1 || compression === 2) throw new Error('BMP with RLE compression is not supported (featherstack reads uncompressed BMP only)');
  if (compression !== 0 && compression !== 3) throw new Error(`BMP compression ${compression} is not supported`);
  if (![1, 4, 8, 16, 24, 32].includes(bits)) throw new Error(`BMP pixel depth ${bits} is not supported`);
  if (!colors) colors = 2 ** bits;
  if (dataOffset === 14 + headerSize && bits <= 8) dataOffset += paletteEntry * colors;
  const stride = (((width * bits + 31) >>> 3) & ~3) >>> 0;
  if (dataOffset + stride * height > buf.length)
    throw new Error(`BMP is truncated: pixel data needs ${dataOffset + stride * height} bytes, file has ${buf.length}`);
  const rowAt = (y: number) => dataOffset + (topDown ? y : height - 1 - y) * stride;
  const n = width * height;

  if (bits <= 8) {
    if (compression !== 0) throw new Error('BMP bit masks on a palette image are not supported');
    if (!(colors > 0 && colors <= 65536)) throw new Error(`BMP palette size ${colors} is not supported`);
    const palStart = 14 + headerSize + (masks && headerSize < 52 ? 12 : 0);
    const data = new Uint8Array(n * 3);
    for (let y = 0; y < height; y++) {
      const row = rowAt(y);
      for (let x = 0; x < width; x++) {
        const bit = x * bits;
        const index = bits === 8 ? buf[row + x]! : (buf[row + (bit >> 3)]! >> (8 - bits - (bit & 7))) & ((1 << bits) - 1);
        const o = (y * width + x) * 3;
        const p = palStart + index * paletteEntry;
        // An index past the palette reads as black, as Pillow's padded palette does.
        if (index < colors && p + 2 < buf.length) {
          data[o] = buf[p + 2]!;
          data[o + 1] = buf[p + 1]!;
          data[o + 2] = buf[p]!;
        }
      }
    }
    return { data, width, height, channels: 3 };
  }

  if (bits === 16) {
    let sixBitGreen = false;
    if (masks) {
      if (masks[0] === 0xf800 && masks[1] === 0x7e0 && masks[2] === 0x1f) sixBitGreen = true;
      else if (!(masks[0] === 0x7c00 && masks[1] === 0x3e0 && masks[2] === 0x1f)) throw new Error('BMP bit-field layout is not supported');
    }
    const data = new Uint8Array(n * 3);
    for (let y = 0; y < height; y++) {
      const row = rowAt(y);
      for (let x = 0; x < width; x++) {
        const v = buf.readUInt16LE(row + 2 * x);
        const o = (y * width + x) * 3;
        data[o + 2] = Math.trunc(((v & 31) * 255) / 31);
        if (sixBitGreen) {
          data[o + 1] = Math.trunc((((v >> 5) & 63) * 255) / 63);
          data[o] = Math.trunc((((v >> 11) & 31) * 255) / 31);
        } else {
          data[o + 1] = Math.trunc((((v >> 5) & 31) * 255) / 31);
          data[o] = Math.trunc((((v >> 10) & 31) * 255) / 31);
        }
      }
    }
    return { data, width, height, channels: 3 };
  }

  // 24 and 32 bits: byte positions of R, G, B (and A) within a pixel.
  let order = [2, 1, 0, -1];
  if (masks) {
    if (bits === 24) {
      if (!(masks[0] === 0xff0000 && masks[1] === 0xff00 && masks[2] === 0xff)) throw new Error('BMP bit-field layout is not supported');
    } else {
      const known = MASKS_32.find(([m]) => m.every((v, i) => v === masks![i]));
      if (!known) throw new Error('BMP bit-field layout is not supported');
      order = known[1];
    }
  }
  const channels = order[3]! >= 0 ? 4 : 3;
  const step = bits >> 3;
  const data = new Uint8Array(n * channels);
  for (let y = 0; y < height; y++) {
    const row = rowAt(y);
    for (let x = 0; x < width; x++) {
      const p = row + x * step;
      const o = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) data[o + c] = buf[p + order[c]!]!;
    }
  }
  return { data, width, height, channels };
}
