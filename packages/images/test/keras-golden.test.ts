import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kerasAffine } from '../src/transforms/affine.js';
import { type FillMode, warpInto } from '../src/transforms/warp.js';

// Produced by Keras 3's own apply_affine_transform (benchmarks/golden/keras_affine.py).
const golden = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'keras-affine.json'), 'utf8')) as {
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  image: number[];
  cases: { params: Record<string, number>; fill_mode: FillMode; cval: number; output: number[] }[];
};

describe('keras: true reproduces Keras 3 apply_affine_transform', () => {
  const src = Uint8Array.from(golden.image);
  for (const c of golden.cases) {
    it(`${JSON.stringify(c.params)} with fill mode ${c.fill_mode}`, () => {
      const p = c.params;
      const m = kerasAffine({ theta: p.theta!, heightShift: p.tx!, widthShift: p.ty!, shear: p.shear!, zx: p.zx!, zy: p.zy! }, golden.height, golden.width, true);
      const dst = new Float32Array(golden.image.length);
      warpInto(src, m, { height: golden.height, width: golden.width, channels: golden.channels, fillMode: c.fill_mode, cval: c.cval, order: 1, flipHorizontal: false, flipVertical: false }, dst, 0, 1);
      const mismatches = Array.from(dst).filter((v, i) => Math.abs(v - c.output[i]!) > 1e-3);
      expect(mismatches.length).toBe(0);
    });
  }
});
