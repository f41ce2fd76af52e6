#!/usr/bin/env node
// An ImageNet-like corpus cut from real photographs: JPEGs of 500×375 at quality 90 (ImageNet's
// typical size and encoding), one class per source photograph, cut as seeded random crops (20–100 %
// of the source's area, random horizontal flip) so that every file is a distinct decode.
//
//   node benchmarks/datasets/photos.mjs --out DIR [--count 2000] [--sources DIR] [--seed 1] [--marker] [--val-every N]
//
// --val-every N: a workflow dataset, DIR/train/<class>/ and DIR/val/<class>/, every Nth crop of a
// class in val/ (N = 5: 1,600 train / 400 val of 2,000, the seed's split).
//
// Sources: Debian wallpaper packages (default /usr/share/backgrounds, filled by `apt-get install
// ukui-wallpapers`), or any directory of JPEG/PNG photographs.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    count: { type: 'string', default: '2000' },
    sources: { type: 'string', default: '/usr/share/backgrounds' },
    seed: { type: 'string', default: '1' },
    marker: { type: 'boolean', default: false },
    'val-every': { type: 'string' },
  },
});
if (!values.out) throw new Error('--out DIR is required');
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive integer, received ${values.count}`);
const valEvery = values['val-every'] === undefined ? 0 : Number(values['val-every']);
if (!Number.isInteger(valEvery) || valEvery < 0 || valEvery === 1) throw new Error(`--val-every must be an integer ≥ 2, received ${values['val-every']}`);
const dirOf = (cls, i) => (valEvery ? join(values.out, i % valEvery === valEvery - 1 ? 'val' : 'train', cls) : join(values.out, cls));

let sources;
try {
  sources = readdirSync(values.sources)
    .filter((f) => ['.jpg', '.jpeg', '.png'].includes(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(values.sources, f));
} catch (error) {
  throw new Error(`cannot list --sources ${values.sources} (${error.code}); install Debian's ukui-wallpapers package or pass a directory of photographs`);
}
if (sources.length === 0) throw new Error(`no JPEG or PNG photographs in ${values.sources}; install ukui-wallpapers or pass --sources`);

// mulberry32: a small seeded generator, so the corpus is the same on every machine.
let state = Number(values.seed) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

rmSync(values.out, { recursive: true, force: true });
const started = performance.now();
for (const [s, source] of sources.entries()) {
  const cls = basename(source, extname(source)).replace(/[^\w-]/g, '_');
  for (const i of [0, valEvery - 1]) mkdirSync(dirOf(cls, Math.max(0, i)), { recursive: true });
  const image = sharp(source, { limitInputPixels: false }).removeAlpha();
  const { width, height } = await image.metadata();
  const decoded = await image.toColourspace('srgb').raw().toBuffer();
  const n = Math.floor(count / sources.length) + (s < count % sources.length ? 1 : 0);
  for (let i = 0; i < n; i++) {
    const area = 0.2 + 0.8 * random();
    const w = Math.min(width, Math.round(Math.sqrt(area * width * height * (4 / 3))));
    const h = Math.min(height, Math.round((w * 3) / 4));
    const left = Math.floor(random() * (width - w + 1));
    const top = Math.floor(random() * (height - h + 1));
    let crop = sharp(decoded, { raw: { width, height, channels: 3 } })
      .extract({ left, top, width: w, height: h })
      .resize(500, 375, { fit: 'fill' });
    if (random() < 0.5) crop = crop.flop();
    await crop.jpeg({ quality: 90 }).toFile(join(dirOf(cls, i), `${String(i).padStart(4, '0')}.jpg`));
  }
}
// --marker: a file that says the corpus is complete (callers that prepare it once check for it).
if (values.marker) writeFileSync(join(values.out, '.complete'), '');
process.stdout.write(
  `${JSON.stringify({ out: values.out, images: count, classes: sources.length, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) })}\n`,
);
