import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeBmp } from '../dist/decoders/bmp.js';
import { decodeGif } from '../dist/decoders/gif.js';
import { decodePng } from '../dist/decoders/png.js';
import { decodePnm } from '../dist/decoders/pnm.js';

// Seeded mutation fuzzing of the decoders featherstack owns (PNG, BMP, PBM/PGM/PPM, GIF), starting
// from the committed Keras golden sources. Every input must either decode to a consistent image or
// throw a plain Error with a reason; never a RangeError or TypeError from Node's buffer internals
// (found: a short IHDR or tRNS chunk), and never allocate from a header's claims before the data
// is known to be there.
const fixtures = join(import.meta.dirname, 'fixtures', 'loading');
const departures = join(import.meta.dirname, 'fixtures', 'departures');
const seeds = [
  ...readdirSync(fixtures).map((f) => readFileSync(join(fixtures, f))),
  ...readdirSync(departures)
    .filter((f) => f.endsWith('.gif'))
    .map((f) => readFileSync(join(departures, f))),
].filter((b) => b[0] === 0x89 || b[0] === 0x42 || b[0] === 0x50 || b[0] === 0x47);
const decoderOf = (b: Buffer) => (b[0] === 0x89 ? decodePng : b[0] === 0x42 ? decodeBmp : b[0] === 0x47 ? decodeGif : decodePnm);

function mutations(seed: number, count: number): Buffer[] {
  let s = seed;
  const pick = (n: number) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((s / 2 ** 31) * n);
  };
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let b = Buffer.from(seeds[pick(seeds.length)]!);
    switch (pick(5)) {
      case 0: // truncation
        b = b.subarray(0, pick(b.length));
        break;
      case 1: // random bytes anywhere
        for (let k = 0; k < 1 + pick(4); k++) b[pick(b.length)] = pick(256);
        break;
      case 2: // extreme header bytes
        b[8 + pick(Math.min(40, b.length - 8))] = [0, 255, 0x7f, 0x80][pick(4)]!;
        break;
      case 3: // extreme 32-bit header fields (sizes, lengths, offsets)
        if (b.length >= 4) b.writeUInt32BE([0xffffffff, 0x7fffffff, 0, 65536][pick(4)]!, Math.min(pick(40), b.length - 4));
        break;
      default: // trailing garbage
        b = Buffer.concat([b, Buffer.alloc(pick(64), pick(256))]);
    }
    out.push(b);
  }
  return out;
}

function outcome(b: Buffer): string {
  try {
    const image = decoderOf(b)(b, 16384 * 16384);
    return image.data.length === image.width * image.height * image.channels ? 'decoded' : 'inconsistent';
  } catch (error) {
    return error instanceof Error && error.constructor === Error && error.message.length > 0
      ? 'refused'
      : `internal ${(error as Error).name}: ${(error as Error).message}`;
  }
}

function png(ihdr: Buffer, ...chunks: [string, Buffer][]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, data, Buffer.alloc(4)]);
  };
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...chunks.map(([t, d]) => chunk(t, d)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decoder fuzzing', () => {
  for (const seed of [1, 2, 3]) {
    it(`20,000 mutated files (seed ${seed}): each decodes consistently or is refused with a reason`, () => {
      const results = new Map<string, number>();
      for (const b of mutations(seed, 20_000)) {
        const r = outcome(b);
        results.set(r, (results.get(r) ?? 0) + 1);
      }
      expect([...results.keys()].filter((k) => k !== 'decoded' && k !== 'refused')).toEqual([]);
      expect(results.get('refused')).toBeGreaterThan(1000);
      expect(results.get('decoded')).toBeGreaterThan(1000);
    });
  }

  it('refuses the cases fuzzing found, by reason', () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(4, 0);
    ihdr.writeUInt32BE(4, 4);
    ihdr[8] = 8; // 8-bit gray
    const pixels = deflateSync(Buffer.alloc(4 * 5));
    expect(() => decodePng(png(ihdr.subarray(0, 9), ['IDAT', pixels]), 1e9)).toThrow('PNG IHDR chunk is 9 bytes, not 13');
    expect(() => decodePng(png(ihdr, ['tRNS', Buffer.alloc(1)], ['IDAT', pixels]), 1e9)).toThrow('PNG tRNS chunk of 1 bytes is too short for colour type 0');
  });

  it('checks a header claiming a huge image against the data before allocating anything', () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(16000, 0);
    ihdr.writeUInt32BE(16000, 4);
    ihdr[8] = 16;
    ihdr[9] = 6; // 16-bit RGBA: 2 GB of samples if believed
    expect(() => decodePng(png(ihdr, ['IDAT', deflateSync(Buffer.alloc(100))]), 16384 * 16384)).toThrow(/PNG image data is short: \d+ of \d+ bytes/);
    // A stream that inflates past the header's size stops there.
    const small = Buffer.from(ihdr);
    small.writeUInt32BE(2, 0);
    small.writeUInt32BE(2, 4);
    expect(() => decodePng(png(small, ['IDAT', deflateSync(Buffer.alloc(50_000_000))]), 1e9)).toThrow(
      'PNG image data inflates to more than the 34 bytes its header describes',
    );
    expect(() => decodePnm(Buffer.from('P6\n16000 16000\n65535\nxx'), 16384 * 16384)).toThrow('PNM image data is truncated');
    expect(() => decodePnm(Buffer.from('P1\n16000 16000\n0 1'), 16384 * 16384)).toThrow('PBM image data is truncated');
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(16000, 18);
    bmp.writeInt32LE(16000, 22);
    bmp.writeUInt16LE(24, 28);
    expect(() => decodeBmp(bmp, 16384 * 16384)).toThrow(/BMP is truncated: pixel data needs \d+ bytes, file has 54/);
    const gif = Buffer.from(readFileSync(join(departures, 'gif0.gif')));
    const frame = gif.indexOf(0x2c, 13 + (gif[10]! & 0x80 ? 3 * (2 << (gif[10]! & 7)) : 0));
    gif.writeUInt16LE(16000, 6);
    gif.writeUInt16LE(16000, 8);
    gif.writeUInt16LE(16000, frame + 5);
    gif.writeUInt16LE(16000, frame + 7);
    expect(() => decodeGif(gif, 16384 * 16384)).toThrow(/GIF image data is short: \d+ bytes cannot fill a 16000×16000 frame/);
  });
});
