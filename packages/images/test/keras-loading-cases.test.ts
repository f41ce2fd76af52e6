import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ColorMode, type Interpolation, loadImage } from '../dist/index.js';

// Produced by Keras 3's own load_img from the committed source files (benchmarks/golden/keras_loading_cases.py).
interface Case {
  source: number;
  colorMode: ColorMode;
  targetSize: [number, number] | null;
  interpolation: Interpolation;
  keepAspectRatio: boolean;
  shape?: [number, number, number];
  sha256?: string;
  wide?: boolean;
  kerasError?: string;
}
const fixtures = join(import.meta.dirname, 'fixtures');
const golden = JSON.parse(readFileSync(join(fixtures, 'keras-loading-cases.json'), 'utf8')) as {
  sources: { file: string; kind: string; height: number; width: number }[];
  cases: Case[];
};

async function outcome(c: Case): Promise<string> {
  const source = golden.sources[c.source]!;
  try {
    const image = await loadImage(join(fixtures, 'loading', source.file), {
      colorMode: c.colorMode,
      interpolation: c.interpolation,
      keepAspectRatio: c.keepAspectRatio,
      ...(c.targetSize ? { targetSize: c.targetSize } : {}),
    });
    return `${image.height}×${image.width}×${image.channels} ${createHash('sha256').update(image.data).digest('hex')}`;
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  }
}

describe(`loading matches Keras's load_img on ${golden.cases.length} generated cases`, () => {
  it('covers every source layout, colour mode and filter, and more than 1,000 cases', () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(1000);
    const kinds = new Set(golden.sources.map((s) => s.kind.split('-').slice(0, 2).join('-')));
    for (const k of ['png-gray16', 'png-palette8', 'png-rgba16', 'bmp-16', 'bmp-pal4', 'ppm-P1', 'ppm-P3', 'ppm-P5', 'ppm-P6', 'tiff-I16', 'jpeg-RGB'])
      expect(kinds).toContain(k);
    for (const mode of ['grayscale', 'rgb', 'rgba']) expect(golden.cases.some((c) => c.colorMode === mode)).toBe(true);
    for (const f of ['nearest', 'bilinear', 'bicubic', 'lanczos']) expect(golden.cases.some((c) => c.interpolation === f)).toBe(true);
  });

  // One test per source keeps the report readable; every case of a failing source is listed.
  const bySource = new Map<number, Case[]>();
  for (const c of golden.cases) bySource.set(c.source, [...(bySource.get(c.source) ?? []), c]);
  for (const [index, cases] of bySource) {
    const source = golden.sources[index]!;
    it(`${source.file} (${source.kind}, ${source.height}×${source.width}): ${cases.length} cases`, async () => {
      const mismatches: string[] = [];
      for (const c of cases) {
        const got = await outcome(c);
        const label = `${c.colorMode} ${c.targetSize?.join('×') ?? 'native'} ${c.interpolation}${c.keepAspectRatio ? ' keep' : ''} (case ${golden.cases.indexOf(c)})`;
        if (c.wide) {
          // Keras keeps 16-bit values that 8-bit pixels cannot hold: refused by name, never reduced.
          if (!/16-bit grayscale image: Keras keeps its values/.test(got)) mismatches.push(`${label}: expected a refusal, got ${got}`);
        } else if (c.kerasError) {
          if (!got.startsWith('refused')) mismatches.push(`${label}: Keras refused (${c.kerasError}), featherstack loaded`);
        } else if (got !== `${c.shape!.join('×')} ${c.sha256}`) mismatches.push(`${label}: ${got}`);
      }
      expect(mismatches).toEqual([]);
    });
  }
});
