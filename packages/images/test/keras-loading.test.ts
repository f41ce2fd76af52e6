import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ColorMode, createImagePool, flowFromDirectory, type ImagePool, type Interpolation } from '../dist/index.js';
import { tempDir } from './helpers.js';

interface Case {
  source: 'rgb' | 'rgba';
  colorMode: ColorMode;
  size: [number, number];
  interpolation: Interpolation;
  keepAspectRatio: boolean;
  output: number[];
}
const golden = JSON.parse(readFileSync(new URL('./fixtures/keras-loading.json', import.meta.url), 'utf8')) as { height: number; width: number; cases: Case[] };

let dir: string;
let pool: ImagePool;
beforeAll(async () => {
  dir = await tempDir();
  pool = createImagePool({ workers: 2 });
  const { height: h, width: w } = golden;
  for (const channels of [3, 4] as const) {
    const data = Buffer.alloc(h * w * channels);
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w; c++) for (let k = 0; k < channels; k++) data[(r * w + c) * channels + k] = (7 * r + 3 * c + 50 * k + ((r * c) % 13)) % 256;
    await mkdir(join(dir, channels === 3 ? 'rgb' : 'rgba', 'x'), { recursive: true });
    await sharp(data, { raw: { width: w, height: h, channels } })
      .png()
      .toFile(join(dir, channels === 3 ? 'rgb' : 'rgba', 'x', 'image.png'));
  }
});
afterAll(() => pool.close());

async function load(c: Case): Promise<Float32Array> {
  const flow = await flowFromDirectory(join(dir, c.source), {
    pool,
    targetSize: c.size,
    colorMode: c.colorMode,
    interpolation: c.interpolation,
    keepAspectRatio: c.keepAspectRatio,
    shuffle: false,
  });
  const batch = (await flow.epoch(0).next()).value!;
  const out = (batch.images as Float32Array).slice();
  await flow.close();
  return out;
}

describe("loading matches Keras's load_img (PIL) exactly: colour conversion, every filter, keep_aspect_ratio", () => {
  for (const c of golden.cases) {
    it(`${c.source} → ${c.colorMode} at ${c.size.join('×')} (${c.interpolation}${c.keepAspectRatio ? ', keepAspectRatio' : ''})`, async () => {
      expect(Array.from(await load(c))).toEqual(c.output);
    });
  }
});
