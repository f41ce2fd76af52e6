import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kerasAffine } from '../dist/transforms/affine.js';
import { brightness, kerasBrightness } from '../dist/transforms/color.js';
import { type FillMode, warpInto } from '../dist/transforms/warp.js';

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
      const m = kerasAffine(
        { theta: p.theta!, heightShift: p.tx!, widthShift: p.ty!, shear: p.shear!, zx: p.zx!, zy: p.zy! },
        golden.height,
        golden.width,
        true,
      );
      const dst = new Float32Array(golden.image.length);
      warpInto(
        src,
        m,
        {
          height: golden.height,
          width: golden.width,
          channels: golden.channels,
          fillMode: c.fill_mode,
          cval: c.cval,
          order: 1,
          flipHorizontal: false,
          flipVertical: false,
        },
        dst,
        0,
        1,
      );
      const mismatches = Array.from(dst).filter((v, i) => Math.abs(v - c.output[i]!) > 1e-3);
      expect(mismatches.length).toBe(0);
    });
  }
});

// Produced by Keras 3's own apply_brightness_shift (benchmarks/golden/keras_brightness.py).
const brightnessGolden = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'keras-brightness.json'), 'utf8')) as {
  cases: { shape: [number, number, number]; factor: number; input: number[]; output: number[] }[];
};

describe("keras: true reproduces Keras's brightness step (PIL's 8-bit ImageEnhance) exactly", () => {
  for (const c of brightnessGolden.cases) {
    const range = Math.min(...c.input) < 0 ? 'values outside 0–255' : 'values in 0–255';
    it(`${c.shape[2]} channel(s), factor ${c.factor.toFixed(3)}, ${range}`, () => {
      const x = Float32Array.from(c.input);
      kerasBrightness(x, 0, x.length, c.factor, c.shape[2]);
      expect(Array.from(x)).toEqual(Array.from(Float32Array.from(c.output)));
    });
  }

  it('differs from the default exact multiplication, which keeps fractions', () => {
    const x = Float32Array.from([10.6, 200.2]);
    const y = x.slice();
    kerasBrightness(x, 0, 2, 0.5, 1);
    brightness(y, 0, 2, 0.5);
    expect(Array.from(x)).toEqual([5, 100]);
    expect(y[0]).toBeCloseTo(5.3, 5);
  });
});
