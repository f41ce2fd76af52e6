import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodePng, isPng } from '../dist/decoders/png.js';

/** A 23×17 image with every PNG filter worth of structure: gradients, noise and flat runs. */
function pixels(channels: number): Buffer {
  const w = 23;
  const h = 17;
  const data = Buffer.alloc(w * h * channels);
  let s = 9;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const p = Math.floor(i / channels);
    data[i] = (p % 5 === 0 ? s >> 20 : (p % w) * 11 + Math.floor(p / w) * 3 + (i % channels) * 40) & 255;
  }
  return data;
}

async function viaSharp(png: Buffer) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data: Array.from(data), channels: info.channels };
}

describe('direct PNG decoding (Pillow-exact; most layouts are covered by the Keras golden cases)', () => {
  for (const [name, channels, options] of [
    ['grayscale', 1, {}],
    ['gray + alpha', 2, {}],
    ['RGB', 3, {}],
    ['RGBA', 4, {}],
    ['RGB, every row its own adaptive filter, max compression', 3, { compressionLevel: 9, adaptiveFiltering: true }],
    ['palette', 3, { palette: true, colours: 64, dither: 0 }],
  ] as const) {
    it(`decodes ${name} exactly as libvips does`, async () => {
      const png = await sharp(pixels(channels), { raw: { width: 23, height: 17, channels } })
        .png(options)
        .toBuffer();
      expect(isPng(png)).toBe(true);
      const fast = decodePng(png, 1e9);
      const reference = await viaSharp(png);
      expect(fast.channels).toBe(reference.channels);
      expect(Array.from(fast.data)).toEqual(reference.data);
    });
  }

  it('decodes interlaced and transparent-palette PNGs as libvips does, and 16-bit RGB to its high byte as Pillow does', async () => {
    const interlaced = await sharp(pixels(3), { raw: { width: 23, height: 17, channels: 3 } })
      .png({ progressive: true })
      .toBuffer();
    expect(Array.from(decodePng(interlaced, 1e9).data)).toEqual((await viaSharp(interlaced)).data);
    const transparent = await sharp(pixels(4), { raw: { width: 23, height: 17, channels: 4 } })
      .png({ palette: true, dither: 0 })
      .toBuffer();
    const decoded = decodePng(transparent, 1e9);
    expect(decoded.channels).toBe(4);
    expect(Array.from(decoded.data)).toEqual((await viaSharp(transparent)).data);
    const deep = await sharp(new Uint16Array(4 * 4 * 3).fill(40000), { raw: { width: 4, height: 4, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect(Array.from(new Set(decodePng(deep, 1e9).data))).toEqual([40000 >> 8]);
  });

  it('refuses damaged files and oversized headers with a reason', async () => {
    const png = await sharp(pixels(3), { raw: { width: 23, height: 17, channels: 3 } })
      .png()
      .toBuffer();
    expect(() => decodePng(png.subarray(0, 60), 1e9)).toThrow(/truncated/);
    expect(() => decodePng(png, 100)).toThrow(/pixel limit/);
  });
});
