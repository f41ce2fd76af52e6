#!/usr/bin/env node
// Image pipeline throughput: featherstack flows (seed augmentation) for 1…cores workers against
// the raw ceiling (sharp decode + resize only, same files, every core), measured in the same run.
//
//   node benchmarks/images.mjs [--data DIR] [--size N] [--color-mode rgb|grayscale] [--epochs N] [--json FILE]
import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const cores = availableParallelism();
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, cores + 2));
const { flowFromDirectory, listDirectory } = await import('@featherstack/images');
const { default: sharp } = await import('sharp');

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: join(import.meta.dirname, '..', 'packages', 'cli', 'data', 'fashion-mnist-small', 'train') },
    size: { type: 'string', default: '28' },
    'color-mode': { type: 'string', default: 'grayscale' },
    epochs: { type: 'string', default: '2' },
    json: { type: 'string' },
  },
});
const size = Number(values.size);
const colorMode = values['color-mode'];
const epochs = Number(values.epochs);
const manifest = await listDirectory(values.data);
const files = manifest.paths.map((p) => join(manifest.root, p));

async function rawCeiling() {
  sharp.concurrency(1);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < files.length) {
      let img = sharp(files[next++]);
      img = colorMode === 'grayscale' ? img.toColourspace('b-w') : img.removeAlpha();
      await img.resize(size, size, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer();
    }
  };
  await Promise.all(Array.from({ length: cores }, worker));
  return files.length / ((performance.now() - started) / 1000);
}

async function flowRate(workers) {
  const flow = await flowFromDirectory(values.data, {
    targetSize: [size, size], colorMode, batchSize: 32, seed: 1, workers,
    augment: { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true },
  });
  try {
    for await (const _ of flow.epoch(0)) void _; // warm-up: worker start, JIT
    const started = performance.now();
    let n = 0;
    for (let e = 1; e <= epochs; e++) for await (const b of flow.epoch(e)) n += b.size;
    return n / ((performance.now() - started) / 1000);
  } finally {
    await flow.close();
  }
}

await rawCeiling(); // warm-up
const ceiling = await rawCeiling();
const rows = [];
for (let w = 1; w <= cores; w++) {
  const rate = await flowRate(w);
  rows.push({ workers: w, imagesPerSecond: Math.round(rate), vsRawCeiling: Number((rate / ceiling).toFixed(2)) });
}
const result = { dataset: relative(process.cwd(), values.data), images: files.length, size, colorMode, cores, rawCeilingImagesPerSecond: Math.round(ceiling), flows: rows };
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result)}\n`);
