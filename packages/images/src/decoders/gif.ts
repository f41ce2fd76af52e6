/**
 * A GIF's first frame as Pillow loads it (what Keras's `load_img` sees): the frame's palette (local,
 * else global, else the indices as gray), pixels outside the frame filled with the transparent
 * index (else index 0), and the transparent index keeping its palette colour with alpha 0. libvips
 * blackens transparent pixels, so Keras's RGB and its RGBA colours both differed there.
 * @internal
 */
import { checkPixelLimit, type DecodedImage } from './image.js';

export function isGif(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 6 &&
    bytes[0] === 0x47 &&
    bytes[1] === 0x49 &&
    bytes[2] === 0x46 &&
    bytes[3] === 0x38 &&
    (bytes[4] === 0x37 || bytes[4] === 0x39) &&
    bytes[5] === 0x61
  );
}

interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
  palette: Uint8Array | null;
  indices: Uint8Array;
}

/** Concatenates the data sub-blocks starting at `pos`; returns them and the position after the terminator. */
function subBlocks(bytes: Uint8Array, pos: number): { data: Uint8Array; end: number } {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    if (pos >= bytes.length) throw new Error('GIF data is truncated');
    const size = bytes[pos++]!;
    if (size === 0) break;
    if (pos + size > bytes.length) throw new Error('GIF data is truncated');
    parts.push(bytes.subarray(pos, pos + size));
    total += size;
    pos += size;
  }
  const data = new Uint8Array(total);
  let o = 0;
  for (const part of parts) {
    data.set(part, o);
    o += part.length;
  }
  return { data, end: pos };
}

/** GIF's variable-width LZW, least significant bit first, into `count` palette indices. */
function lzw(data: Uint8Array, minCodeSize: number, count: number): Uint8Array {
  if (minCodeSize < 2 || minCodeSize > 11) throw new Error(`GIF has an invalid LZW code size ${minCodeSize}`);
  const out = new Uint8Array(count);
  const prefix = new Int16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  const clear = 1 << minCodeSize;
  for (let i = 0; i < clear; i++) {
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let codeSize = minCodeSize + 1;
  let next = clear + 2;
  let prev = -1;
  let written = 0;
  let bits = 0;
  let buffer = 0;
  let pos = 0;
  while (written < count) {
    while (bits < codeSize && pos < data.length) {
      buffer |= data[pos++]! << bits;
      bits += 8;
    }
    if (bits < codeSize) break;
    const code = buffer & ((1 << codeSize) - 1);
    buffer >>>= codeSize;
    bits -= codeSize;
    if (code === clear) {
      codeSize = minCodeSize + 1;
      next = clear + 2;
      prev = -1;
      continue;
    }
    if (code === clear + 1) break;
    let emit = code;
    if (prev === -1) {
      if (code >= clear) throw new Error('GIF image data is corrupt (a code before the table has entries)');
    } else if (next < 4096) {
      if (code > next) throw new Error('GIF image data is corrupt (a code beyond the table)');
      prefix[next] = prev;
      first[next] = first[prev]!;
      suffix[next] = code === next ? first[prev]! : first[code]!;
      length[next] = length[prev]! + 1;
      next++;
      if (next === 1 << codeSize && codeSize < 12) codeSize++;
    } else if (code >= next) throw new Error('GIF image data is corrupt (a code beyond the table)');
    const n = Math.min(length[emit]!, count - written);
    // Strings are stored back to front; a string cut by the frame's end keeps its head.
    for (let skip = length[emit]! - n; skip > 0; skip--) emit = prefix[emit]!;
    for (let i = n - 1; i >= 0; i--) {
      out[written + i] = suffix[emit]!;
      emit = prefix[emit]!;
    }
    written += n;
    prev = code;
  }
  if (written < count) throw new Error(`GIF image data is truncated (${written} of ${count} pixels)`);
  return out;
}

/** Rows in file order for an interlaced frame: every 8th from 0, every 8th from 4, every 4th from 2, every 2nd from 1. */
function deinterlace(indices: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(indices.length);
  let row = 0;
  for (const [start, step] of [
    [0, 8],
    [4, 8],
    [2, 4],
    [1, 2],
  ] as const) {
    for (let y = start; y < height; y += step, row++) out.set(indices.subarray(row * width, (row + 1) * width), y * width);
  }
  return out;
}

function readFrame(bytes: Uint8Array, pos: number, pixelLimit: number): Frame {
  if (pos + 9 > bytes.length) throw new Error('GIF data is truncated');
  const left = bytes[pos]! | (bytes[pos + 1]! << 8);
  const top = bytes[pos + 2]! | (bytes[pos + 3]! << 8);
  const width = bytes[pos + 4]! | (bytes[pos + 5]! << 8);
  const height = bytes[pos + 6]! | (bytes[pos + 7]! << 8);
  const packed = bytes[pos + 8]!;
  checkPixelLimit('GIF frame', width, height, pixelLimit);
  pos += 9;
  let palette: Uint8Array | null = null;
  if (packed & 0x80) {
    const size = 3 * (2 << (packed & 7));
    palette = bytes.subarray(pos, pos + size);
    pos += size;
  }
  if (pos >= bytes.length) throw new Error('GIF data is truncated');
  const minCodeSize = bytes[pos++]!;
  const { data } = subBlocks(bytes, pos);
  // Each code takes at least 3 bits and yields at most 4,096 pixels: a frame the data cannot fill
  // is refused before anything is allocated for it.
  if (width * height > Math.ceil((data.length * 8) / 3) * 4096)
    throw new Error(`GIF image data is short: ${data.length} bytes cannot fill a ${width}×${height} frame`);
  let indices = lzw(data, minCodeSize, width * height);
  if (packed & 0x40) indices = deinterlace(indices, width, height);
  return { left, top, width, height, palette, indices };
}

export function decodeGif(bytes: Uint8Array, pixelLimit: number): DecodedImage {
  if (bytes.length < 13) throw new Error('GIF data is truncated');
  const screenW = bytes[6]! | (bytes[7]! << 8);
  const screenH = bytes[8]! | (bytes[9]! << 8);
  const packed = bytes[10]!;
  let pos = 13;
  let global: Uint8Array | null = null;
  if (packed & 0x80) {
    const size = 3 * (2 << (packed & 7));
    global = bytes.subarray(pos, pos + size);
    pos += size;
  }
  let transparency = -1;
  let frame: Frame | null = null;
  while (pos < bytes.length && !frame) {
    const block = bytes[pos++]!;
    if (block === 0x2c) frame = readFrame(bytes, pos, pixelLimit);
    else if (block === 0x21) {
      const label = bytes[pos++];
      // Graphic control extension: its flags' bit 0 says the transparent index is set.
      if (label === 0xf9 && bytes[pos]! >= 4 && bytes[pos + 1]! & 1) transparency = bytes[pos + 4]!;
      pos = subBlocks(bytes, pos).end;
    } else if (block === 0x3b) break;
    else throw new Error(`GIF has an unknown block 0x${block.toString(16)} at byte ${pos - 1}`);
  }
  if (!frame) throw new Error('GIF has no image');
  // Pillow grows the canvas to hold a first frame that overhangs the logical screen.
  const width = Math.max(screenW, frame.left + frame.width);
  const height = Math.max(screenH, frame.top + frame.height);
  checkPixelLimit('GIF', width, height, pixelLimit);
  const palette = frame.palette ?? global;
  const channels = transparency >= 0 ? 4 : 3;
  const out = new Uint8Array(width * height * channels);
  const put = (o: number, index: number) => {
    const p = index * 3;
    if (palette) {
      out[o] = palette[p] ?? 0;
      out[o + 1] = palette[p + 1] ?? 0;
      out[o + 2] = palette[p + 2] ?? 0;
    } else out[o] = out[o + 1] = out[o + 2] = index;
    if (channels === 4) out[o + 3] = index === transparency ? 0 : 255;
  };
  const fill = Math.max(0, transparency);
  for (let y = 0; y < height; y++) {
    const fy = y - frame.top;
    for (let x = 0; x < width; x++) {
      const fx = x - frame.left;
      const inside = fy >= 0 && fy < frame.height && fx >= 0 && fx < frame.width;
      put((y * width + x) * channels, inside ? frame.indices[fy * frame.width + fx]! : fill);
    }
  }
  return { data: out, width, height, channels };
}
