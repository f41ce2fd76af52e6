import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { type DecodeScratch, decodeJpegNative } from '../dist/decoders/jpeg.js';
import { flowFromDirectory, jpegDecoder, loadImage } from '../dist/index.js';
import { tempDir } from './helpers.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

/** A w×h×c image with edges, gradients and noise, so that every IDCT coefficient matters. */
function busyPixels(width: number, height: number, channels: 1 | 3, seed: number): Buffer {
  const data = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const x = Math.floor(i / channels) % width;
    const y = Math.floor(i / channels / width);
    data[i] = (((x * 7 + y * 3) & 64 ? 200 : 30) + (s >>> 27) * 2 + ((x + y) % 17)) & 255;
  }
  return data;
}

/** libvips' decode, as load.ts used it for every JPEG before: sRGB, ICC ignored. */
async function viaLibvips(bytes: Buffer): Promise<Buffer> {
  const { data } = await sharp(bytes, { failOn: 'error', ignoreIcc: true }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return data;
}

/** Gray pixels as libvips' sRGB gives them: each value three times. */
const replicate = (gray: Uint8Array): Buffer => Buffer.from(Array.from(gray, (v) => [v, v, v]).flat());

const VARIANTS: [string, (s: Sharp) => Sharp][] = [
  ['baseline 4:2:0 q75', (s) => s.jpeg({ quality: 75, chromaSubsampling: '4:2:0', mozjpeg: false })],
  ['baseline 4:4:4 q95', (s) => s.jpeg({ quality: 95, chromaSubsampling: '4:4:4', mozjpeg: false })],
  ['progressive q80', (s) => s.jpeg({ quality: 80, progressive: true, mozjpeg: false })],
  ['mozjpeg (trellis, progressive scans)', (s) => s.jpeg({ quality: 60, mozjpeg: true })],
  ['optimised Huffman q100', (s) => s.jpeg({ quality: 100, optimiseCoding: true, mozjpeg: false })],
];

describe('JPEG through libjpeg-turbo directly', () => {
  it('is the decoder this build uses (the package build compiles it)', () => {
    expect(jpegDecoder()).toEqual({ decoder: 'libjpeg-turbo' });
  });

  for (const [name, encode] of VARIANTS) {
    for (const [width, height] of [
      [37, 23],
      [1, 1],
      [1, 300],
      [640, 17],
    ] as const) {
      it(`decodes ${name} at ${width}×${height} to exactly libvips' pixels`, async () => {
        const bytes = await encode(sharp(busyPixels(width, height, 3, width * 31 + height), { raw: { width, height, channels: 3 } })).toBuffer();
        const decoded = decodeJpegNative(bytes, 1e9);
        expect(decoded).not.toBeNull();
        expect([decoded!.width, decoded!.height, decoded!.channels]).toEqual([width, height, 3]);
        expect(Buffer.from(decoded!.data).equals(await viaLibvips(bytes))).toBe(true);
      });
    }
  }

  it("decodes a gray JPEG to one channel, whose replication is libvips' sRGB", async () => {
    const bytes = await sharp(busyPixels(45, 29, 1, 5), { raw: { width: 45, height: 29, channels: 1 } })
      .toColourspace('b-w')
      .jpeg({ quality: 85 })
      .toBuffer();
    const decoded = decodeJpegNative(bytes, 1e9)!;
    expect(decoded.channels).toBe(1);
    expect(replicate(decoded.data as Uint8Array).equals(await viaLibvips(bytes))).toBe(true);
  });

  it('matches libvips on every JPEG among the Keras-parity fixtures it answers for, and leaves CMYK to libvips', async () => {
    let answered = 0;
    for (const sub of ['loading', 'departures']) {
      for (const file of readdirSync(join(FIXTURES, sub)).filter((f) => /\.jpe?g$/i.test(f))) {
        const bytes = readFileSync(join(FIXTURES, sub, file));
        const decoded = decodeJpegNative(bytes, 1e9);
        if (file.startsWith('cmyk')) {
          expect(decoded, file).toBeNull();
          continue;
        }
        expect(decoded, file).not.toBeNull();
        const pixels = decoded!.channels === 1 ? replicate(decoded!.data as Uint8Array) : Buffer.from(decoded!.data);
        expect(pixels.equals(await viaLibvips(bytes)), file).toBe(true);
        answered++;
      }
    }
    expect(answered).toBeGreaterThanOrEqual(8);
  });

  it('answers null for a truncated stream, an image over the pixel limit, and what is not a JPEG', async () => {
    const bytes = await sharp(busyPixels(64, 48, 3, 9), { raw: { width: 64, height: 48, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    expect(decodeJpegNative(bytes, 1e9)).not.toBeNull();
    // libjpeg only warns about a premature end (and fills gray): that is libvips' case to decide.
    expect(decodeJpegNative(bytes.subarray(0, bytes.length >> 1), 1e9)).toBeNull();
    expect(decodeJpegNative(bytes.subarray(0, 40), 1e9)).toBeNull();
    expect(decodeJpegNative(bytes, 64 * 48 - 1)).toBeNull();
    expect(decodeJpegNative(await sharp(bytes).png().toBuffer(), 1e9)).toBeNull();
  });

  it('on 3,000 mutated JPEGs, answers exactly what libvips decodes, or null (libvips then decides)', async () => {
    const originals = await Promise.all(
      VARIANTS.map(([, encode], k) => encode(sharp(busyPixels(33, 21, 3, k), { raw: { width: 33, height: 21, channels: 3 } })).toBuffer()),
    );
    let s = 7;
    const random = () => {
      s = (s * 1103515245 + 12345) >>> 0;
      return s / 2 ** 32;
    };
    let answered = 0;
    for (let n = 0; n < 3000; n++) {
      const bytes = Buffer.from(originals[n % originals.length]!);
      // A few bytes overwritten anywhere past the SOI marker: headers, tables or entropy data.
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) bytes[2 + Math.floor(random() * (bytes.length - 2))] = Math.floor(random() * 256);
      const decoded = decodeJpegNative(bytes, 1e9);
      if (!decoded) continue;
      answered++;
      const reference = await viaLibvips(bytes).catch((error: Error) => error);
      expect(reference, `mutation ${n}`).toBeInstanceOf(Buffer);
      const pixels = decoded.channels === 1 ? replicate(decoded.data as Uint8Array) : Buffer.from(decoded.data);
      expect(pixels.equals(reference as Buffer), `mutation ${n}`).toBe(true);
    }
    expect(answered).toBeGreaterThan(500);
  });

  it('a fallback keeps the message libvips gives: the pixel limit, a truncated file', async () => {
    const dir = await tempDir();
    const bytes = await sharp(busyPixels(64, 48, 3, 3), { raw: { width: 64, height: 48, channels: 3 } })
      .jpeg()
      .toBuffer();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'big.jpg'), bytes);
    await expect(loadImage(join(dir, 'big.jpg'), { pixelLimit: 100 })).rejects.toThrow(/big\.jpg.*pixel limit/);
    await writeFile(join(dir, 'cut.jpg'), bytes.subarray(0, 30));
    await expect(loadImage(join(dir, 'cut.jpg'))).rejects.toThrow(/cut\.jpg/);
  });

  it('decodes into a reused scratch, grown as needed, each result exactly its own size', async () => {
    const scratch: DecodeScratch = { bytes: new Uint8Array(0) };
    const sizes = [
      [50, 40],
      [8, 8],
      [120, 90],
      [50, 40],
    ] as const;
    for (const [k, [width, height]] of sizes.entries()) {
      const bytes = await sharp(busyPixels(width, height, 3, k), { raw: { width, height, channels: 3 } })
        .jpeg()
        .toBuffer();
      const decoded = decodeJpegNative(bytes, 1e9, scratch)!;
      expect(decoded.data.length).toBe(width * height * 3);
      expect(decoded.data.buffer).toBe(scratch.bytes.buffer);
      expect(Buffer.from(decoded.data).equals(await viaLibvips(bytes))).toBe(true);
    }
    expect(scratch.bytes.length).toBeGreaterThanOrEqual(120 * 90 * 3);
  });
});

describe('a flow decoding JPEGs in its workers', () => {
  afterEach(() => {
    delete process.env.FEATHERSTACK_JPEG;
  });

  it('gives the batches of the libvips decoder (FEATHERSTACK_JPEG=libvips), shuffled, resized, augmented', async () => {
    const dir = await tempDir();
    const { mkdir } = await import('node:fs/promises');
    for (let i = 0; i < 12; i++) {
      const [w, h] = [40 + i * 13, 30 + ((i * 7) % 25)];
      await mkdir(join(dir, `c${i % 3}`), { recursive: true });
      const image = sharp(busyPixels(w, h, 3, i), { raw: { width: w, height: h, channels: 3 } });
      await (i % 4 === 3 ? image.toColourspace('b-w') : image).jpeg({ quality: 70 + i, progressive: i % 2 === 0 }).toFile(join(dir, `c${i % 3}`, `p${i}.jpg`));
    }
    const options = {
      targetSize: [24, 32] as [number, number],
      batchSize: 5,
      seed: 3,
      workers: 2,
      augment: { shearRange: 10, zoomRange: 0.2, horizontalFlip: true, rescale: 1 / 255 },
    };
    const epoch = async () => {
      const flow = await flowFromDirectory(dir, options);
      try {
        const out: number[][] = [];
        for await (const batch of flow.epoch(0)) out.push(Array.from(batch.images));
        return out;
      } finally {
        await flow.close();
      }
    };
    const native = await epoch();
    process.env.FEATHERSTACK_JPEG = 'libvips';
    const libvips = await epoch();
    expect(native.length).toBe(3);
    expect(native).toEqual(libvips);
  });
});
