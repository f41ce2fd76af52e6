import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagePool, type FlowOptions, flowFromDirectory, type ImagePool, KERAS_EXTENSIONS, loadImage } from '../dist/index.js';
import { tempDir, writeImage } from './helpers.js';

let pool: ImagePool;
beforeAll(() => {
  pool = createImagePool({ workers: 2 });
});
afterAll(() => pool.close());

/** The first batch of a flow over `dir`, copied. */
async function first(dir: string, options: FlowOptions) {
  const flow = await flowFromDirectory(dir, { pool, shuffle: false, ...options });
  try {
    const b = (await flow.epoch(0).next()).value!;
    return { images: Array.from(b.images), paths: b.paths, shape: b.shape };
  } finally {
    await flow.close();
  }
}

describe('image kinds', () => {
  it('converts CMYK JPEGs to RGB', async () => {
    const dir = await tempDir();
    const rgb = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < rgb.length; i += 3) [rgb[i], rgb[i + 1], rgb[i + 2]] = [200, 40, 90];
    await writeImage(join(dir, 'x', 'placeholder.png'));
    await sharp(rgb, { raw: { width: 16, height: 16, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg({ quality: 100 })
      .toFile(join(dir, 'x', 'cmyk.jpg'));
    expect((await sharp(join(dir, 'x', 'cmyk.jpg')).metadata()).space).toBe('cmyk');
    const { images, shape } = await first(dir, { targetSize: [16, 16], classes: ['x'], batchSize: 1 });
    expect(shape).toEqual([1, 16, 16, 3]);
    // Through an ICC round trip (PIL would invert the inks naively instead), so roughly the colour.
    const [r, g, b] = images;
    expect(Math.abs(r! - 200) + Math.abs(g! - 40) + Math.abs(b! - 90)).toBeLessThan(45);
  });

  it('reads 16-bit RGB PNGs as their high byte, as PIL does', async () => {
    const dir = await tempDir();
    const px = new Uint16Array(4 * 4 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 4099) % 65536;
    const file = join(dir, 'x', 'deep.png');
    await mkdir(join(dir, 'x'), { recursive: true });
    await sharp(px, { raw: { width: 4, height: 4, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toFile(file);
    expect((await sharp(file).metadata()).depth).toBe('ushort');
    const { images } = await first(dir, { targetSize: [4, 4], classes: ['x'] });
    expect(images).toEqual(Array.from(px, (v) => v >> 8));
  });

  it('loads BMP and PPM files through the pool as loadImage (tested against Keras) does', async () => {
    const dir = await tempDir();
    const fixtures = join(import.meta.dirname, 'fixtures', 'loading');
    await mkdir(join(dir, 'x'), { recursive: true });
    const { sources } = JSON.parse(readFileSync(join(fixtures, '..', 'keras-loading-cases.json'), 'utf8')) as { sources: { file: string; kind: string }[] };
    // 16-bit 5-6-5 BMP, 4-bit palette BMP, ASCII PPM, binary PGM with a maxval below 255.
    const files = ['bmp-16-565', 'bmp-pal4', 'ppm-P3', 'ppm-P5-maxval'].map((k) => sources.find((s) => s.kind.startsWith(k))!.file);
    for (const f of files) await writeFile(join(dir, 'x', f), readFileSync(join(fixtures, f)));
    const { images, paths } = await first(dir, { targetSize: [9, 7], batchSize: files.length, interpolation: 'bilinear' });
    expect(paths.length).toBe(files.length);
    for (const [i, p] of paths.entries()) {
      const expected = await loadImage(join(dir, p), { targetSize: [9, 7], interpolation: 'bilinear' });
      expect(images.slice(i * 189, (i + 1) * 189)).toEqual(Array.from(expected.data));
    }
  });

  it('refuses a 16-bit grayscale PNG in grayscale mode by path (Keras keeps 0–65535), and clips it to 255 in rgb mode as Keras does', async () => {
    const dir = await tempDir();
    const file = join(dir, 'x', 'gray16.png');
    await mkdir(join(dir, 'x'), { recursive: true });
    await sharp(Uint16Array.from([0, 100, 255, 256, 1000, 65535]), { raw: { width: 6, height: 1, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toFile(file);
    const rgb = await first(dir, { targetSize: [1, 6] });
    expect(rgb.images.filter((_, i) => i % 3 === 0)).toEqual([0, 100, 255, 255, 255, 255]);
    await expect(first(dir, { targetSize: [1, 6], colorMode: 'grayscale' })).rejects.toThrow(/gray16\.png: 16-bit grayscale image: Keras keeps its values/);
  });

  it('replicates grayscale sources into RGB and keeps them as they are in grayscale mode', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'x', 'gray.png'), { width: 5, height: 3, channels: 1, seed: 11 });
    const gray = await first(dir, { targetSize: [3, 5], colorMode: 'grayscale' });
    const rgb = await first(dir, { targetSize: [3, 5], colorMode: 'rgb' });
    expect(gray.images).toEqual(Array.from({ length: 15 }, (_, i) => (11 + 7 * Math.floor(i / 5) + 3 * (i % 5)) % 256));
    expect(rgb.images).toEqual(gray.images.flatMap((v) => [v, v, v]));
  });

  it('accepts webp and gif only when asked for, and decodes them', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'x', 'a.png'), { seed: 1 });
    const raw = Buffer.alloc(12 * 10 * 3, 90);
    await sharp(raw, { raw: { width: 12, height: 10, channels: 3 } })
      .webp({ lossless: true })
      .toFile(join(dir, 'x', 'b.webp'));
    await sharp(raw, { raw: { width: 12, height: 10, channels: 3 } })
      .gif()
      .toFile(join(dir, 'x', 'c.gif'));
    expect((await first(dir, { targetSize: [10, 12], batchSize: 8 })).paths).toEqual(['x/a.png']);
    const all = await first(dir, { targetSize: [10, 12], batchSize: 8, extensions: [...KERAS_EXTENSIONS, 'webp', 'gif'] });
    expect(all.paths).toEqual(['x/a.png', 'x/b.webp', 'x/c.gif']);
    expect(all.images[360]).toBe(90); // the webp's first pixel
  });

  it('lists and loads unicode names and reports them intact', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'ñandú', 'über 😀.png'), { seed: 3 });
    const { paths, images } = await first(dir, { targetSize: [10, 12] });
    expect(paths).toEqual(['ñandú/über 😀.png']);
    expect(images[0]).toBe(3);
  });

  it('refuses a PNG whose header claims huge dimensions, naming it, before decoding', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'x', 'bomb.png'), { width: 2, height: 2 });
    const png = readFileSync(join(dir, 'x', 'bomb.png'));
    // IHDR data starts at byte 16: width, height (big-endian); its CRC covers type + data.
    png.writeUInt32BE(100_000, 16);
    png.writeUInt32BE(100_000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
    await writeFile(join(dir, 'x', 'bomb.png'), png);
    const flow = await flowFromDirectory(dir, { pool, targetSize: [8, 8] });
    try {
      await expect(flow.epoch(0).next()).rejects.toThrow(/cannot load image .*bomb\.png: .*pixel limit/i);
    } finally {
      await flow.close();
    }
  });
});

describe('beyond Keras', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
    for (let i = 0; i < 6; i++) await writeImage(join(dir, 'x', `${i}.png`), { width: 40, height: 30, seed: i * 30 });
  });

  it('random-resized-crop is deterministic per (seed, epoch, sample) and changes between epochs', async () => {
    const options: FlowOptions = { targetSize: [12, 12], randomCrop: { scale: [0.2, 0.6] }, seed: 5, batchSize: 6 };
    const a = await first(dir, options);
    const b = await first(dir, { ...options, workers: 1 });
    expect(b.images).toEqual(a.images);
    const flow = await flowFromDirectory(dir, { ...options, pool, shuffle: false });
    const e1 = Array.from((await flow.epoch(1).next()).value!.images);
    await flow.close();
    expect(e1).not.toEqual(a.images);
    const whole = await first(dir, { targetSize: [12, 12], randomCrop: { scale: [1, 1], ratio: [4 / 3, 4 / 3] }, batchSize: 6 });
    const plain = await first(dir, { targetSize: [12, 12], batchSize: 6 });
    expect(whole.images).toEqual(plain.images); // the full-image crop is a plain resize
  });

  it('fastDecode resizes in libvips: same shape, pixels close to the exact path', async () => {
    const exact = await first(dir, { targetSize: [15, 20], interpolation: 'bilinear', batchSize: 6 });
    const fast = await first(dir, { targetSize: [15, 20], interpolation: 'bilinear', batchSize: 6, fastDecode: true });
    expect(fast.shape).toEqual(exact.shape);
    const meanDiff = fast.images.reduce((s, v, i) => s + Math.abs(v - exact.images[i]!), 0) / fast.images.length;
    expect(meanDiff).toBeLessThan(3);
  });

  it("uint8 batches hold the float pipeline's values rounded", async () => {
    const augment = { rotationRange: 25, zoomRange: 0.2 };
    const f = await first(dir, { targetSize: [12, 16], seed: 2, augment, batchSize: 6 });
    const u = await first(dir, { targetSize: [12, 16], seed: 2, augment, batchSize: 6, dtype: 'uint8' });
    expect(u.images.every((v, i) => Math.abs(v - f.images[i]!) <= 0.5 + 1e-4)).toBe(true);
  });
});

describe('standardisation (Keras standardize)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
    for (let i = 0; i < 8; i++) await writeImage(join(dir, 'x', `${i}.png`), { width: 6, height: 5, seed: i * 17 });
  });

  it('samplewise centring and std normalisation give each image mean 0 and std 1', async () => {
    const { images } = await first(dir, {
      targetSize: [5, 6],
      batchSize: 8,
      augment: { rescale: 1 / 255, samplewiseCenter: true, samplewiseStdNormalization: true },
    });
    for (let s = 0; s < 8; s++) {
      const x = images.slice(s * 90, (s + 1) * 90);
      const mean = x.reduce((a, v) => a + v, 0) / x.length;
      const std = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length);
      expect(mean).toBeCloseTo(0, 5);
      expect(std).toBeCloseTo(1, 4);
    }
  });

  it('featurewise statistics come from fit(), in the units standardisation sees; without fit() the flow refuses', async () => {
    const augment = { rescale: 1 / 255, featurewiseCenter: true, featurewiseStdNormalization: true };
    const flow = await flowFromDirectory(dir, { pool, targetSize: [5, 6], batchSize: 8, shuffle: false, augment });
    try {
      expect(() => flow.epoch(0)).toThrow(/call `await flow.fit\(\)` first/);
      const stats = await flow.fit();
      expect(stats.mean.every((m) => m > 0 && m < 1)).toBe(true); // rescaled units
      const x = Array.from((await flow.epoch(0).next()).value!.images);
      for (let c = 0; c < 3; c++) {
        const ch = x.filter((_, i) => i % 3 === c);
        const mean = ch.reduce((a, v) => a + v, 0) / ch.length;
        const std = Math.sqrt(ch.reduce((a, v) => a + (v - mean) ** 2, 0) / ch.length);
        expect(mean).toBeCloseTo(0, 4);
        expect(std).toBeCloseTo(1, 3);
      }
    } finally {
      await flow.close();
    }
    const keras = await flowFromDirectory(dir, { pool, targetSize: [5, 6], augment: { ...augment, keras: true } });
    const raw = await keras.fit();
    await keras.close();
    expect(raw.mean.every((m) => m > 1)).toBe(true); // Keras fits on unscaled pixels
  });

  it('ZCA whitening from fit() decorrelates the samples: their covariance becomes the identity', async () => {
    const zdir = await tempDir();
    await mkdir(join(zdir, 'x'), { recursive: true });
    let state = 7;
    const rand = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    for (let i = 0; i < 60; i++) {
      // Correlated pixels: a random base value plus noise, so whitening has something to undo.
      const base = rand() * 200;
      const px = Buffer.from(Array.from({ length: 4 * 5 }, () => Math.min(255, base + rand() * 55)));
      await sharp(px, { raw: { width: 5, height: 4, channels: 1 } })
        .png()
        .toFile(join(zdir, 'x', `${String(i).padStart(2, '0')}.png`));
    }
    const augment = { rescale: 1 / 255, featurewiseCenter: true, zcaWhitening: true, zcaEpsilon: 1e-9 };
    const flow = await flowFromDirectory(zdir, { pool, targetSize: [4, 5], colorMode: 'grayscale', batchSize: 60, shuffle: false, augment });
    try {
      await flow.fit();
      const x = (await flow.epoch(0).next()).value!.images as Float32Array;
      const d = 20;
      // Keras whitens the second moment about the per-channel mean (featurewise centring), so that
      // moment of the whitened samples is the identity.
      let worst = 0;
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          let cov = 0;
          for (let s = 0; s < 60; s++) cov += x[s * d + i]! * x[s * d + j]!;
          worst = Math.max(worst, Math.abs(cov / 60 - (i === j ? 1 : 0)));
        }
      }
      expect(worst).toBeLessThan(0.02);
    } finally {
      await flow.close();
    }
  });

  it('runs a preprocessing function module in the workers, before rescale', async () => {
    const mod = join(await tempDir(), 'invert.mjs');
    await writeFile(mod, 'export default function invert(x) { for (let i = 0; i < x.length; i++) x[i] = 255 - x[i]; }\n');
    const plain = await first(dir, { targetSize: [5, 6], batchSize: 2 });
    const inverted = await first(dir, { targetSize: [5, 6], batchSize: 2, augment: { preprocessingFunction: mod, rescale: 0.5 } });
    expect(inverted.images).toEqual(plain.images.map((v) => (255 - v) * 0.5));
    await expect(flowFromDirectory(dir, { pool, augment: { preprocessingFunction: join(dir, 'missing.mjs') } })).rejects.toThrow(
      /options\.augment\.preprocessingFunction must be the path of an existing ES module/,
    );
  });
});
