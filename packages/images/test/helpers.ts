import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { setTestHooks, type TestHooks } from '../dist/flow/hooks.js';

export async function tempDir(prefix = 'featherstack-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes a w×h image whose pixel (r, c, k) is (seed + 7r + 3c + 50k) mod 256. */
export async function writeImage(path: string, options: { width?: number; height?: number; channels?: 1 | 3; seed?: number } = {}): Promise<void> {
  const { width = 12, height = 10, channels = 3, seed = 0 } = options;
  const data = Buffer.alloc(width * height * channels);
  for (let r = 0; r < height; r++)
    for (let c = 0; c < width; c++) for (let k = 0; k < channels; k++) data[(r * width + c) * channels + k] = (seed + 7 * r + 3 * c + 50 * k) % 256;
  await mkdir(dirname(path), { recursive: true });
  await sharp(data, { raw: { width, height, channels } }).png().toFile(path);
}

export async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** `flow` with the internal test hooks set (a per-task delay, a crashing worker). */
export function withHooks<F extends object>(flow: F, hooks: TestHooks): F {
  setTestHooks(flow, hooks);
  return flow;
}
