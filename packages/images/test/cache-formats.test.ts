import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ColorMode, flowFromDirectory, type FlowOptions, type ImageFlow } from '../dist/index.js';
import { tempDir, writeImage } from './helpers.js';

// The encoded pixel caches (cacheFormat png and jpeg:Q): the same rows as the raw cache, stored as
// images at the flow's size, encoded by the decode workers in the first epoch and decoded by them
// in later ones.

let root: string;
beforeAll(async () => {
  root = await tempDir();
  for (let i = 0; i < 14; i++) await writeImage(join(root, i % 2 ? 'cat' : 'dog', `${i}.png`), { width: 20, height: 14, seed: i * 13 });
});

const options: FlowOptions = {
  targetSize: [12, 16],
  batchSize: 4,
  seed: 9,
  workers: 2,
  augment: { rotationRange: 20, zoomRange: 0.1, horizontalFlip: true, rescale: 1 / 255 },
};

async function epochs(flow: ImageFlow, which: number[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const e of which) {
    const images: number[] = [];
    for await (const b of flow.epoch(e)) images.push(...b.images);
    out.push(images);
  }
  return out;
}

function rows(cache: string) {
  const table = tableFromIPC(readFileSync(cache));
  const pixels = table.getChild('pixels')!;
  return {
    table,
    key: JSON.parse(table.schema.metadata.get('featherstack.pixel_cache')!) as { encoding: string; format: number },
    bytes: Array.from({ length: table.numRows }, (_, r) => pixels.get(r) as Uint8Array),
  };
}

describe('a png pixel cache', () => {
  for (const colorMode of ['rgb', 'grayscale', 'rgba'] as ColorMode[]) {
    it(`gives later epochs exactly the pixels of decoding (${colorMode}), stored as PNGs at the flow's size`, async () => {
      const cache = join(await tempDir(), 'c.arrow');
      const plain = await flowFromDirectory(root, { ...options, colorMode });
      const cached = await flowFromDirectory(root, { ...options, colorMode, cache, cacheFormat: 'png' });
      try {
        expect(cached.cachePlan).toMatchObject({ state: 'write', format: 'png', bytes: null });
        const expected = await epochs(plain, [0, 1, 2]);
        const [first] = await epochs(cached, [0]);
        expect(cached.cached).toBe(true);
        const rest = await epochs(cached, [1, 2]);
        expect([first, ...rest]).toEqual(expected);
      } finally {
        await Promise.all([plain.close(), cached.close()]);
      }
      const { key, bytes } = rows(cache);
      expect(key).toMatchObject({ format: 4, encoding: 'png' });
      expect(bytes).toHaveLength(14);
      const channels = { rgb: 3, grayscale: 1, rgba: 4 }[colorMode as 'rgb'];
      for (const png of bytes) {
        expect(Buffer.from(png.subarray(1, 4)).toString()).toBe('PNG');
        const meta = await sharp(png).metadata();
        expect([meta.width, meta.height, meta.channels]).toEqual([16, 12, channels]);
      }
      // A new flow reads the finished cache, as for a raw one.
      const again = await flowFromDirectory(root, { ...options, colorMode, cache, cacheFormat: 'png' });
      expect(again.cached).toBe(true);
      expect(again.cachePlan).toMatchObject({ state: 'read', format: 'png' });
      await again.close();
    });
  }

  it('refuses a row overwritten in place by its CRC-32, and a cache of another format by name', async () => {
    const cache = join(await tempDir(), 'c.arrow');
    const first = await flowFromDirectory(root, { ...options, cache, cacheFormat: 'png' });
    await epochs(first, [0]);
    await first.close();
    const { table, bytes } = rows(cache);
    const file = readFileSync(cache);
    const at = file.indexOf(Buffer.from(bytes[0]!));
    expect(at).toBeGreaterThan(0);
    file[at + 20] = 255 - file[at + 20]!;
    writeFileSync(cache, file);
    const again = await flowFromDirectory(root, { ...options, cache, cacheFormat: 'png' });
    try {
      const path = join(root, again.filenames[table.getChild('sample')!.get(0) as number]!);
      await expect(epochs(again, [0])).rejects.toThrow(`${path}: pixel cache ${cache}: the pixels at byte ${at} fail their CRC-32`);
    } finally {
      await again.close();
    }
    await expect(flowFromDirectory(root, { ...options, cache })).rejects.toThrow(
      `pixel cache ${cache} was built for other images or settings: encoding "png" (this flow: "raw"): delete it to rebuild it`,
    );
  });
});

describe('a jpeg pixel cache', () => {
  it('stores JPEGs of the quality asked for; later epochs decode them (close to, not equal to, the originals)', async () => {
    const cache = join(await tempDir(), 'c.arrow');
    const plain = await flowFromDirectory(root, { ...options, augment: { rescale: 1 / 255 }, shuffle: false });
    const cached = await flowFromDirectory(root, { ...options, augment: { rescale: 1 / 255 }, shuffle: false, cache, cacheFormat: 'jpeg:95' });
    try {
      const [exact] = await epochs(plain, [0]);
      const [first] = await epochs(cached, [0]);
      expect(first).toEqual(exact); // the first epoch decodes the files
      const [later] = await epochs(cached, [1]);
      expect(cached.cached).toBe(true);
      expect(later).not.toEqual(exact);
      const meanError = later!.reduce((n, v, i) => n + Math.abs(v - exact![i]!), 0) / later!.length;
      expect(meanError).toBeGreaterThan(0);
      expect(meanError).toBeLessThan(0.08); // noise images: JPEG's worst case
      // Each row is a JPEG at the flow's size; reading one equals sharp's decode of its bytes.
      const { key, bytes, table } = rows(cache);
      expect(key.encoding).toBe('jpeg:95');
      const sample = table.getChild('sample')!.get(0) as number;
      const decoded = await sharp(bytes[0]!).raw().toBuffer();
      const size = 12 * 16 * 3;
      expect(Array.from(later!.slice(sample * size, (sample + 1) * size))).toEqual(Array.from(decoded, (v) => Math.fround(v * (1 / 255))));
    } finally {
      await Promise.all([plain.close(), cached.close()]);
    }
  });

  it('is refused for four channels, and an unknown format is refused, naming the option', async () => {
    await expect(flowFromDirectory(root, { ...options, colorMode: 'rgba', cache: 'x.arrow', cacheFormat: 'jpeg' })).rejects.toThrow(
      'options.cacheFormat must be png or raw for 4-channel images (JPEG holds no alpha), received "jpeg:90"',
    );
    for (const bad of ['jpeg:0', 'jpeg:101', 'webp', 'jpeg:', 'JPEG']) {
      await expect(flowFromDirectory(root, { ...options, cache: 'x.arrow', cacheFormat: bad as 'png' })).rejects.toThrow(
        `options.cacheFormat must be raw, png or jpeg[:Q] with Q from 1 to 100, received "${bad}"`,
      );
    }
  });
});

describe("an encoded cache's budget", () => {
  async function writeWith(cacheBudget: number) {
    const dir = await tempDir();
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => w.code === 'FEATHERSTACK_CACHE_OVER_BUDGET' && warnings.push(w.message);
    process.on('warning', onWarning);
    const flow = await flowFromDirectory(root, { ...options, cache: join(dir, 'c.arrow'), cacheFormat: 'png', cacheBudget });
    try {
      const [e0] = await epochs(flow, [0]);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      return { dir, flow, e0: e0!, warnings, files: readdirSync(dir) };
    } finally {
      process.off('warning', onWarning);
      await flow.close();
    }
  }

  it('is given up, before a byte past the budget is written, when its rows would pass it; epochs decode instead', async () => {
    const whole = await writeWith(2 ** 30);
    const { bytes } = rows(join(whole.dir, 'c.arrow'));
    const total = bytes.reduce((n, b) => n + b.length, 0);
    const firstBatch = bytes.slice(0, 4).reduce((n, b) => n + b.length, 0);
    // Less than the first batch: given up at once. A budget the first batch shows too small for all
    // 14 images: given up after it, on its bytes per image.
    const cases: [number, RegExp][] = [
      [firstBatch - 1, /would pass its budget of 0\.0 MiB after 0 of 14 images: removed, and epochs decode instead/],
      [Math.floor((firstBatch / 4) * 14) - 1, /its first 4 images took 0\.0 MiB, so 14 would need about 0\.0 MiB, more than its budget/],
    ];
    for (const [budget, reason] of cases) {
      const { flow, e0, warnings, files } = await writeWith(budget);
      expect(e0).toEqual(whole.e0);
      expect(files).toEqual([]);
      expect(flow.cached).toBe(false);
      expect(flow.cachePlan).toMatchObject({ state: 'over-budget', format: 'png', budget });
      expect(flow.cachePlan.state === 'over-budget' && flow.cachePlan.reason).toMatch(reason);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(reason);
    }
    // A budget of its rows' bytes (and of what its first batch projects): written.
    const fits = await writeWith(Math.max(total, Math.ceil((firstBatch / 4) * 14)));
    expect(fits.files).toEqual(['c.arrow']);
  });
});
