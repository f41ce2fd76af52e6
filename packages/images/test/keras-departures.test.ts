import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { type Interpolation, loadImage } from '../dist/index.js';
import { kerasAffine } from '../dist/transforms/affine.js';
import { type FillMode, warpInto } from '../dist/transforms/warp.js';

// Produced by Keras 3 itself (load_img on Pillow 12, apply_affine_transform on scipy):
// benchmarks/golden/keras_departures.py, seeded. The families are the departures the trust review
// found: box and Hamming filters, TIFF orientation, GIF transparency, extreme aspect ratios, CMYK,
// order-0 warps and sample points on exact edges.
const fixtures = join(import.meta.dirname, 'fixtures');
const loading = JSON.parse(readFileSync(join(fixtures, 'keras-departures.json'), 'utf8')) as {
  cases: {
    source: string;
    kind: string;
    colorMode: 'grayscale' | 'rgb' | 'rgba';
    targetSize: [number, number] | null;
    interpolation: Interpolation;
    keepAspectRatio: boolean;
    shape: [number, number, number];
    sha256: string;
  }[];
};
const warps = JSON.parse(readFileSync(join(fixtures, 'keras-warps.json'), 'utf8')) as {
  cases: {
    height: number;
    width: number;
    channels: 1 | 2 | 3;
    image: number[];
    params: { theta: number; tx: number; ty: number; shear: number; zx: number; zy: number };
    fillMode: FillMode;
    order: 0 | 1;
    cval: number;
    matrix: number[];
    offset: number[];
    sha256: string;
  }[];
};

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const family = (kind: string) => kind.split('-')[0]!;

describe('loading equals Keras load_img on the departure families', () => {
  const exact = loading.cases.filter((c) => !c.kind.endsWith('-cmyk'));
  it('covers every filter, TIFF orientation, GIF layout and extreme aspect ratio', () => {
    expect(new Set(exact.map((c) => c.interpolation))).toEqual(new Set(['nearest', 'bilinear', 'bicubic', 'lanczos', 'box', 'hamming']));
    const orientations = new Set(exact.filter((c) => c.kind.startsWith('tiff-')).map((c) => /-o(\d)-/.exec(c.kind)![1]));
    expect(orientations.size).toBe(8);
    expect(new Set(exact.filter((c) => c.kind.startsWith('gif-')).map((c) => c.kind.split('-').at(-1)))).toEqual(new Set(['full', 'offset', 'overhang']));
    expect(exact.some((c) => c.kind.startsWith('gif-') && c.kind.includes('-trns'))).toBe(true);
    expect(exact.some((c) => c.kind.startsWith('webp-'))).toBe(true);
    expect(exact.some((c) => /^png-\d{3}x\d$/.test(c.kind))).toBe(true);
  });
  for (const name of [...new Set(exact.map((c) => family(c.kind)))]) {
    it(`${name}: every case bit for bit`, async () => {
      const wrong: string[] = [];
      for (const c of exact.filter((k) => family(k.kind) === name)) {
        const image = await loadImage(join(fixtures, 'departures', c.source), {
          colorMode: c.colorMode,
          targetSize: c.targetSize ?? undefined,
          interpolation: c.interpolation,
          keepAspectRatio: c.keepAspectRatio,
        });
        const same = image.height === c.shape[0] && image.width === c.shape[1] && image.channels === c.shape[2] && sha256(image.data) === c.sha256;
        if (!same) wrong.push(`${c.source} (${c.kind}) ${c.colorMode} ${c.targetSize} ${c.interpolation}${c.keepAspectRatio ? ' keep' : ''}`);
      }
      expect(wrong).toEqual([]);
    });
  }
});

describe('CMYK: the documented departure, and only that', () => {
  const cmyk = [...new Set(loading.cases.filter((c) => c.kind.endsWith('-cmyk')).map((c) => c.source))];
  it('covers JPEG and TIFF', () => {
    expect(new Set(cmyk.map((f) => f.split('.').at(-1)))).toEqual(new Set(['jpg', 'tif']));
  });
  for (const file of cmyk) {
    it(`${file} converts with libvips' ICC transform (Keras inverts inks naively)`, async () => {
      const path = join(fixtures, 'departures', file);
      const image = await loadImage(path, { colorMode: 'rgb' });
      const { data } = await sharp(path, { ignoreIcc: true }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(sha256(image.data)).toBe(sha256(data));
      const keras = loading.cases.filter((c) => c.source === file);
      for (const c of keras) expect(c.shape.slice(0, 2)).toEqual(c.targetSize ?? [image.height, image.width]);
    });
  }
});

describe('warps equal Keras apply_affine_transform (scipy.ndimage) bit for bit', () => {
  it('covers order 0 and 1 in every fill mode, edge shears and tie zooms', () => {
    const kinds = new Set(warps.cases.map((c) => `${c.order}/${c.fillMode}`));
    expect(kinds.size).toBe(8);
    expect(warps.cases.some((c) => Math.abs(c.params.shear) === 90)).toBe(true);
    expect(warps.cases.some((c) => c.params.zx === 0.7 || c.params.zy === 1.3)).toBe(true);
  });
  for (const order of [0, 1] as const) {
    for (const fillMode of ['constant', 'nearest', 'reflect', 'wrap'] as const) {
      it(`order ${order}, fill ${fillMode}: Keras's matrix and featherstack's both give Keras's float32 output`, () => {
        const wrong: string[] = [];
        for (const c of warps.cases.filter((k) => k.order === order && k.fillMode === fillMode)) {
          const p = c.params;
          const ours = kerasAffine({ theta: p.theta, heightShift: p.tx, widthShift: p.ty, shear: p.shear, zx: p.zx, zy: p.zy }, c.height, c.width, true)!;
          const theirs = Float64Array.of(c.matrix[0]!, c.matrix[1]!, c.offset[0]!, c.matrix[2]!, c.matrix[3]!, c.offset[1]!);
          // numpy's 3×3 products (BLAS) may round the last bits otherwise: equal within 16 ulps.
          for (let i = 0; i < 6; i++) expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThanOrEqual(16 * Number.EPSILON * Math.max(1, Math.abs(theirs[i]!)));
          for (const [which, m] of [
            ['Keras', theirs],
            ['featherstack', ours],
          ] as const) {
            const dst = new Float32Array(c.height * c.width * c.channels);
            const spec = { height: c.height, width: c.width, channels: c.channels, fillMode, cval: c.cval, order, flipHorizontal: false, flipVertical: false };
            warpInto(Uint8Array.from(c.image), m, spec, dst, 0, 1);
            if (sha256(new Uint8Array(dst.buffer)) !== c.sha256) wrong.push(`${c.height}×${c.width}×${c.channels} ${JSON.stringify(p)} with ${which}'s matrix`);
          }
        }
        expect(wrong).toEqual([]);
      });
    }
  }
});
