import { describe, expect, it } from 'vitest';
import { drawParams, resolveAugment } from '../dist/augment.js';
import { kerasAffine } from '../dist/transforms/affine.js';
import { warpInto } from '../dist/transforms/warp.js';

const none = { theta: 0, heightShift: 0, widthShift: 0, shear: 0, zx: 1, zy: 1 };

/** Applies an affine matrix to (row, col). */
function map(m: Float64Array, r: number, c: number): [number, number] {
  return [m[0]! * r + m[1]! * c + m[2]!, m[3]! * r + m[4]! * c + m[5]!];
}

describe('augmentation matrix', () => {
  it('is undefined for the identity (no warp, as Keras skips it)', () => {
    expect(kerasAffine(none, 8, 8)).toBeUndefined();
  });

  it('zooms about the true centre by default and about Keras’s swapped pivot in keras mode', () => {
    const m = kerasAffine({ ...none, zx: 2, zy: 2 }, 9, 5)!;
    expect(map(m, 4, 2)).toEqual([4, 2]); // centre ((h-1)/2, (w-1)/2) is fixed
    expect(map(m, 5, 2)).toEqual([6, 2]); // output samples twice as far from the centre
    const k = kerasAffine({ ...none, zx: 2, zy: 2 }, 9, 5, true)!;
    expect(map(k, 2, 4)).toEqual([2, 4]); // Keras pivots at (w/2 - 0.5, h/2 - 0.5) on (row, col)
  });

  it('moves rows for a height shift by default; keras mode reproduces Keras’s swapped axis', () => {
    const m = kerasAffine({ ...none, heightShift: 3 }, 10, 10)!;
    expect(map(m, 2, 2)).toEqual([5, 2]);
    const k = kerasAffine({ ...none, heightShift: 3 }, 10, 10, true)!;
    expect(map(k, 2, 2)).toEqual([2, 5]);
  });

  it('rotates by theta degrees about the centre', () => {
    const m = kerasAffine({ ...none, theta: 90 }, 5, 5)!;
    const [r, c] = map(m, 2, 4); // a point right of the centre
    expect(r).toBeCloseTo(4, 10);
    expect(c).toBeCloseTo(2, 10);
  });
});

describe('warp fill modes (scipy order-1 semantics)', () => {
  // A 1×4 single-channel image [10, 20, 30, 40], shifted left by 2 columns: out[c] = in[c + 2].
  const src = Uint8Array.of(10, 20, 30, 40);
  const shift = Float64Array.of(1, 0, 0, 0, 1, 2);
  const run = (fillMode: 'constant' | 'nearest' | 'reflect' | 'wrap', m = shift) => {
    const dst = new Float32Array(4);
    warpInto(src, m, { height: 1, width: 4, channels: 1, fillMode, cval: 5, order: 1, flipHorizontal: false, flipVertical: false }, dst, 0, 1);
    return Array.from(dst);
  };
  it('nearest repeats the edge', () => expect(run('nearest')).toEqual([30, 40, 40, 40]));
  it('constant fills with cval', () => expect(run('constant')).toEqual([30, 40, 5, 5]));
  it('reflect mirrors about the edge (d c b a | a b c d)', () => expect(run('reflect')).toEqual([30, 40, 40, 30]));
  it('wrap repeats the image with scipy’s period n - 1 (first and last samples overlap)', () => expect(run('wrap')).toEqual([30, 40, 20, 30]));
  it('interpolates linearly between samples', () => {
    expect(run('nearest', Float64Array.of(1, 0, 0, 0, 1, 0.5))).toEqual([15, 25, 35, 40]);
  });
  it('flips after the warp (Keras order)', () => {
    const dst = new Float32Array(4);
    warpInto(src, shift, { height: 1, width: 4, channels: 1, fillMode: 'nearest', cval: 0, order: 1, flipHorizontal: true, flipVertical: false }, dst, 0, 1);
    expect(Array.from(dst)).toEqual([40, 40, 40, 30]);
  });
});

describe('augmentation parameters', () => {
  const spec = resolveAugment({ rotationRange: 20, zoomRange: 0.2, shearRange: 5, horizontalFlip: true, widthShiftRange: 0.1 });
  it('are a pure function of (seed, epoch, sample)', () => {
    expect(drawParams(spec, 1, 2, 3, 32, 32)).toEqual(drawParams(spec, 1, 2, 3, 32, 32));
    expect(drawParams(spec, 1, 2, 3, 32, 32)).not.toEqual(drawParams(spec, 1, 2, 4, 32, 32));
    expect(drawParams(spec, 1, 2, 3, 32, 32)).not.toEqual(drawParams(spec, 1, 3, 3, 32, 32));
  });
  it('stay inside their ranges, with x and y zoom drawn independently', () => {
    let differentZoom = 0;
    for (let i = 0; i < 500; i++) {
      const p = drawParams(spec, 9, 0, i, 32, 32);
      expect(Math.abs(p.theta)).toBeLessThanOrEqual(20);
      expect(p.zx).toBeGreaterThanOrEqual(0.8);
      expect(p.zy).toBeLessThanOrEqual(1.2);
      expect(Math.abs(p.widthShift)).toBeLessThanOrEqual(3.2); // 0.1 of the width, in pixels
      if (p.zx !== p.zy) differentZoom++;
    }
    expect(differentZoom).toBe(500);
  });
  it('rejects bad options naming the option', () => {
    // A misspelt option is an error, not silently ignored.
    expect(() => resolveAugment({ shearRnge: 0.2 } as never)).toThrow(
      /^options\.augment\.shearRnge must be a known augmentation option — there is no such option \(known: rotationRange, .*shearRange.*\), received 0\.2$/,
    );
    expect(() => resolveAugment({ zoomRange: 1.5 })).toThrow('options.augment.zoomRange must be a number in [0, 1) or [lo, hi] with 0 < lo ≤ hi, received 1.5');
    expect(() => resolveAugment({ fillMode: 'mirror' as never })).toThrow(
      `options.augment.fillMode must be one of 'constant', 'nearest', 'reflect', 'wrap', received "mirror"`,
    );
    expect(() => resolveAugment({ rotationRange: -1 })).toThrow('options.augment.rotationRange must be a finite number ≥ 0, received -1');
    expect(() => resolveAugment({ rescale: 0 })).toThrow('options.augment.rescale must be a finite non-zero number, received 0');
  });
});
