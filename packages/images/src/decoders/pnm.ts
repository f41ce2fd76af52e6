/**
 * PBM/PGM/PPM (P1–P6) as Pillow's PpmImagePlugin reads them: comments in the header, ASCII and
 * binary bodies, any maxval. Pillow scales samples to 8 bits with round(v / maxval · 255) (Python's
 * round: half to even), except grayscale with a maxval above 255, which becomes mode I with values
 * round(v / maxval · 65535), and binary grayscale at maxval 65535, read as is. Bitmaps: 1 is black.
 * @internal
 */
import { checkPixelLimit, type DecodedImage } from './image.js';

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

export function isPnm(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0x50 && buf[1]! >= 0x31 && buf[1]! <= 0x36 && WHITESPACE.has(buf[2]!);
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function decodePnm(buf: Buffer, pixelLimit: number): DecodedImage {
  const kind = buf[1]! - 0x30;
  let pos = 3;
  // Pillow's _read_token: skip leading whitespace, '#' comments to the end of the line, then read up
  // to the next whitespace, which is consumed (so binary data starts right after it).
  const token = (what: string): number => {
    let text = '';
    while (pos < buf.length) {
      const c = buf[pos++]!;
      if (WHITESPACE.has(c)) {
        if (text) break;
        continue;
      }
      if (c === 0x23) {
        while (pos < buf.length && buf[pos] !== 0x0a && buf[pos] !== 0x0d) pos++;
        pos++;
        continue;
      }
      text += String.fromCharCode(c);
      if (text.length > 10) throw new Error(`PNM header ${what} is too long`);
    }
    if (!/^\d+$/.test(text)) throw new Error(`PNM header has no valid ${what}${text ? ` (got '${text}')` : ' (end of file)'}`);
    return Number(text);
  };
  const width = token('width');
  const height = token('height');
  checkPixelLimit('PNM', width, height, pixelLimit);
  const n = width * height;
  if (kind === 1 || kind === 4) {
    if (pos + (kind === 4 ? Math.ceil(width / 8) * height : n) > buf.length) throw new Error('PBM image data is truncated');
    const data = new Uint8Array(n);
    if (kind === 4) {
      const stride = Math.ceil(width / 8);
      if (pos + stride * height > buf.length) throw new Error('PBM image data is truncated');
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = (buf[pos + y * stride + (x >> 3)]! >> (7 - (x & 7))) & 1 ? 0 : 255;
    } else {
      let i = 0;
      while (i < n && pos < buf.length) {
        const c = buf[pos++]!;
        if (c === 0x23) {
          while (pos < buf.length && buf[pos] !== 0x0a && buf[pos] !== 0x0d) pos++;
        } else if (c === 0x30 || c === 0x31) data[i++] = c === 0x31 ? 0 : 255;
        else if (!WHITESPACE.has(c)) throw new Error(`PBM has an invalid token '${String.fromCharCode(c)}'`);
      }
      if (i < n) throw new Error('PBM image data is truncated');
    }
    return { data, width, height, channels: 1 };
  }
  const maxval = token('maxval');
  if (!(maxval > 0 && maxval < 65536)) throw new Error(`PNM maxval must be in 1..65535, got ${maxval}`);
  const channels = kind === 3 || kind === 6 ? 3 : 1;
  const wide = channels === 1 && maxval > 255;
  const outMax = wide ? 65535 : 255;
  const scale = (v: number) => (v === maxval ? outMax : roundHalfEven((v / maxval) * outMax));
  const count = n * channels;
  const bytes = kind === 5 || kind === 6 ? (maxval > 255 ? 2 : 1) : 1;
  // Checked before allocating: ASCII samples take a byte each at least.
  if (pos + count * bytes > buf.length) throw new Error(`PNM image data is truncated: needs ${count * bytes} bytes, has ${buf.length - pos}`);
  const data = wide ? new Uint16Array(count) : new Uint8Array(count);
  if (kind === 5 || kind === 6) {
    for (let i = 0; i < count; i++) {
      const v = bytes === 2 ? buf.readUInt16BE(pos + 2 * i) : buf[pos + i]!;
      data[i] = maxval === 255 || (wide && maxval === 65535) ? v : Math.min(outMax, scale(v));
    }
  } else {
    for (let i = 0; i < count; i++) {
      const v = token('sample');
      if (v > maxval) throw new Error(`PNM sample ${v} exceeds maxval ${maxval}`);
      data[i] = maxval === 255 ? v : scale(v);
    }
  }
  return { data, width, height, channels };
}
