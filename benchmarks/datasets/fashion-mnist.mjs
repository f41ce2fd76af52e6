#!/usr/bin/env node
// Writes Fashion-MNIST (Debian package dataset-fashion-mnist, MIT licence, Zalando Research) as PNG
// files in class folders, the layout flow_from_directory reads.
//
//   node benchmarks/datasets/fashion-mnist.mjs --out DIR [--train-per-class N] [--val-per-class N]
//
// Without the per-class limits it writes the whole set (60,000 train / 10,000 val). The repository
// ships the subset made with --train-per-class 200 --val-per-class 50 (packages/fixtures/data).
// Class folders carry their label index as a prefix so that code-point order (Keras's class order)
// equals Fashion-MNIST's label order.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

export const CLASS_NAMES = ['t-shirt_top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot'];
const SOURCE = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

function readIdx(file) {
  let buf;
  try {
    buf = gunzipSync(readFileSync(file));
  } catch (error) {
    throw new Error(`cannot read ${file} (${error.code ?? error.message}); install Debian's dataset-fashion-mnist package or set FASHION_MNIST_DIR`);
  }
  const magic = buf.readUInt32BE(0);
  const dims = magic & 0xff;
  const shape = Array.from({ length: dims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  return { shape, data: buf.subarray(4 + 4 * dims) };
}

async function writeSplit(prefix, outDir, perClass) {
  const images = readIdx(join(SOURCE, `${prefix}-images-idx3-ubyte.gz`));
  const labels = readIdx(join(SOURCE, `${prefix}-labels-idx1-ubyte.gz`));
  const [n, h, w] = images.shape;
  const counts = new Array(10).fill(0);
  for (const [i, name] of CLASS_NAMES.entries()) mkdirSync(join(outDir, `${i}_${name}`), { recursive: true });
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const label = labels.data[i];
    if (perClass !== undefined && counts[label] >= perClass) continue;
    counts[label]++;
    const pixels = images.data.subarray(i * h * w, (i + 1) * h * w);
    const file = join(outDir, `${label}_${CLASS_NAMES[label]}`, `${prefix}-${String(i).padStart(5, '0')}.png`);
    jobs.push(
      sharp(pixels, { raw: { width: w, height: h, channels: 1 } })
        .png({ compressionLevel: 9 })
        .toFile(file),
    );
    if (jobs.length >= 256) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  return counts.reduce((a, b) => a + b, 0);
}

const { values } = parseArgs({
  options: { out: { type: 'string' }, 'train-per-class': { type: 'string' }, 'val-per-class': { type: 'string' } },
});
if (!values.out) {
  process.stderr.write('usage: fashion-mnist.mjs --out DIR [--train-per-class N] [--val-per-class N]\n');
  process.exit(2);
}
const limit = (v) => (v === undefined ? undefined : Number(v));
rmSync(values.out, { recursive: true, force: true });
const train = await writeSplit('train', join(values.out, 'train'), limit(values['train-per-class']));
const val = await writeSplit('t10k', join(values.out, 'val'), limit(values['val-per-class']));
// Marks the set complete, so that callers preparing it once (featherstack bench) never reuse a
// half-written one.
writeFileSync(join(values.out, '.complete'), '');
process.stdout.write(`${JSON.stringify({ out: values.out, train, val })}\n`);
