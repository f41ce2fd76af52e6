#!/usr/bin/env node
// Image pipeline throughput, every row measured in the same run on the same files:
//   - raw ceiling: sharp decode + resize only, no augmentation, every core;
//   - featherstack flows with the seed's augmentation for 1…cores workers (Keras-exact decode),
//     with fastDecode, and with the pixel cache (first epoch vs cached epochs);
//   - Keras ImageDataGenerator.flow_from_directory and tf.data (image_dataset_from_directory +
//     preprocessing layers, AUTOTUNE) when Python tensorflow is installed; "not run" otherwise.
// Every rate is taken after a warm-up epoch, as the median of --repeats interleaved runs.
//
//   node benchmarks/images.mjs [--data DIR] [--size 224] [--color-mode rgb] [--epochs 1] [--repeats 3]
//                              [--json FILE] [--markdown FILE] [--chart FILE.png] [--no-peers]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, runPeer, writeWorkersChart, SHIPPED_IMAGE_OPTIONS } from './lib.mjs';

const { cores } = machine();
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, cores + 2));
const { createImagePool, flowFromDirectory, listDirectory } = await import('@featherstack/images');
const { default: sharp } = await import('sharp');

const { values } = parseArgs({
  options: {
    ...SHIPPED_IMAGE_OPTIONS,
    epochs: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '32' },
    ...OUTPUT_OPTIONS,
    ...PEER_OPTION,
  },
});
const size = Number(values.size);
const colorMode = values['color-mode'];
const epochs = Number(values.epochs);
const repeats = Number(values.repeats);
const batchSize = Number(values['batch-size']);
for (const [name, v] of [
  ['size', size],
  ['epochs', epochs],
  ['repeats', repeats],
  ['batch-size', batchSize],
]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, received ${values[name]}`);
}
const manifest = await listDirectory(values.data);
const files = manifest.paths.map((p) => join(manifest.root, p));
const SEED_AUGMENT = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };

async function rawCeiling() {
  sharp.concurrency(1);
  sharp.cache(false);
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

async function timedEpochs(flow, from, count) {
  const started = performance.now();
  let n = 0;
  for (let e = from; e < from + count; e++) for await (const b of flow.epoch(e)) n += b.size;
  return n / ((performance.now() - started) / 1000);
}

/** A flow on a warm pool, its warm-up epoch done; `rate()` times the next `epochs` epochs. */
async function warmFlow(pool, extra = {}) {
  const flow = await flowFromDirectory(values.data, { targetSize: [size, size], colorMode, batchSize, seed: 1, pool, augment: SEED_AUGMENT, ...extra });
  await timedEpochs(flow, 0, 1);
  let next = 1;
  return {
    flow,
    rate: async () => {
      const r = await timedEpochs(flow, next, epochs);
      next += epochs;
      return r;
    },
  };
}

/** First epoch (decode + cache write) against later epochs read from the pixel cache. */
async function cacheRun(pool) {
  const dir = mkdtempSync(join(tmpdir(), 'featherstack-bench-'));
  const flow = await flowFromDirectory(values.data, {
    targetSize: [size, size],
    colorMode,
    batchSize,
    seed: 1,
    pool,
    augment: SEED_AUGMENT,
    cache: join(dir, 'pixels.arrow'),
  });
  try {
    const first = await timedEpochs(flow, 0, 1);
    const cached = await timedEpochs(flow, 1, Math.max(2, epochs));
    return { first, cached };
  } finally {
    await flow.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function peer(mode) {
  return runPeer(
    'keras_images.py',
    ['--mode', mode, '--data', values.data, '--size', size, '--color-mode', colorMode, '--batch', batchSize, '--epochs', epochs],
    { enabled: !values['no-peers'] },
  );
}

log(`images: ${files.length} files from ${values.data} at ${size}×${size} ${colorMode}, ${cores} cores, ${repeats} interleaved repeats`);
// Rows are measured interleaved — every repeat runs each row once — so that a slow spell on a
// shared machine lands on all rows alike; each row reports its median.
await rawCeiling(); // warm-up: page cache, libvips
const pools = Array.from({ length: cores }, (_, i) => createImagePool({ workers: i + 1 }));
const runs = { ceiling: [], flows: Array.from({ length: cores }, () => []), fast: [], first: [], cached: [], keras: [], tfdata: [] };
let keras;
let tfdata;
try {
  const warm = [];
  for (const pool of pools) warm.push(await warmFlow(pool));
  const fastFlow = await warmFlow(pools[cores - 1], { fastDecode: true });
  for (let r = 0; r < repeats; r++) {
    runs.ceiling.push(await rawCeiling());
    for (const [i, w] of warm.entries()) runs.flows[i].push(await w.rate());
    runs.fast.push(await fastFlow.rate());
    const c = await cacheRun(pools[cores - 1]);
    runs.first.push(c.first);
    runs.cached.push(c.cached);
    keras = peer('idg');
    if (keras.imagesPerSecond) runs.keras.push(keras.imagesPerSecond);
    tfdata = peer('tfdata');
    if (tfdata.imagesPerSecond) runs.tfdata.push(tfdata.imagesPerSecond);
    log(
      `repeat ${r + 1}: ceiling ${runs.ceiling[r].toFixed(0)}, flows ${runs.flows.map((f) => f[r].toFixed(0)).join('/')}, fastDecode ${runs.fast[r].toFixed(0)}, cache ${c.first.toFixed(0)} → ${c.cached.toFixed(0)}, keras ${keras.imagesPerSecond ?? keras.reason}, tf.data ${tfdata.imagesPerSecond ?? tfdata.reason}`,
    );
  }
  for (const w of [...warm, fastFlow]) await w.flow.close();
} finally {
  await Promise.all(pools.map((p) => p.close()));
}
const ceiling = median(runs.ceiling);
const flows = runs.flows.map((rates, i) => ({ workers: i + 1, imagesPerSecond: median(rates) }));
const fast = median(runs.fast);
const cache = { first: median(runs.first), cached: median(runs.cached) };
if (runs.keras.length) keras = { ...keras, imagesPerSecond: median(runs.keras), runs: runs.keras };
if (runs.tfdata.length) tfdata = { ...tfdata, imagesPerSecond: median(runs.tfdata), runs: runs.tfdata };

const best = flows[flows.length - 1].imagesPerSecond;
const ratio = (a, b) => (a != null && b ? Number((a / b).toFixed(2)) : null);
const result = {
  benchmark: 'images',
  dataset: relative(process.cwd(), values.data) || '.',
  images: files.length,
  size,
  colorMode,
  batchSize,
  augmentation: SEED_AUGMENT,
  ...machine(),
  repeats,
  rawCeiling: { imagesPerSecond: Math.round(ceiling), runs: runs.ceiling.map(Math.round) },
  flows: flows.map((f, i) => ({
    workers: f.workers,
    imagesPerSecond: Math.round(f.imagesPerSecond),
    vsRawCeiling: ratio(f.imagesPerSecond, ceiling),
    runs: runs.flows[i].map(Math.round),
  })),
  fastDecode: { workers: cores, imagesPerSecond: Math.round(fast), vsRawCeiling: ratio(fast, ceiling) },
  pixelCache: {
    workers: cores,
    firstEpochImagesPerSecond: Math.round(cache.first),
    cachedImagesPerSecond: Math.round(cache.cached),
    cachedVsFirst: ratio(cache.cached, cache.first),
  },
  peers: {
    kerasImageDataGenerator: keras,
    tfData: tfdata,
  },
  ratios: {
    vsRawCeiling: ratio(best, ceiling),
    vsKerasImageDataGenerator: ratio(best, keras.imagesPerSecond),
    vsTfData: ratio(best, tfdata.imagesPerSecond),
    cachedVsFirstEpoch: ratio(cache.cached, cache.first),
  },
};

const fmt = (v) => (v == null ? 'not run' : String(v));
const times = (v) => (v == null ? 'not run' : `${v}×`);
const md = [
  `Images: ${result.images} files, ${size}×${size} ${colorMode}, batch ${batchSize}, seed augmentation (shear 0.2, zoom 0.2, horizontal flip, rescale), ${cores} cores (${result.cpu}).`,
  '',
  '| pipeline | workers | images/s | vs raw ceiling |',
  '|---|---:|---:|---:|',
  `| raw ceiling: sharp decode + resize, no augmentation | ${cores} | ${result.rawCeiling.imagesPerSecond} | 1.00 |`,
  ...result.flows.map((f) => `| featherstack (Keras-exact decode) | ${f.workers} | ${f.imagesPerSecond} | ${f.vsRawCeiling} |`),
  `| featherstack, fastDecode | ${cores} | ${result.fastDecode.imagesPerSecond} | ${result.fastDecode.vsRawCeiling} |`,
  `| featherstack, pixel cache: first epoch | ${cores} | ${result.pixelCache.firstEpochImagesPerSecond} | ${ratio(cache.first, ceiling)} |`,
  `| featherstack, pixel cache: cached epochs | ${cores} | ${result.pixelCache.cachedImagesPerSecond} | ${ratio(cache.cached, ceiling)} |`,
  `| Keras ImageDataGenerator.flow_from_directory | 1 | ${fmt(keras.imagesPerSecond)} | ${fmt(ratio(keras.imagesPerSecond, ceiling))} |`,
  `| tf.data image_dataset_from_directory + layers, AUTOTUNE | ${cores} | ${fmt(tfdata.imagesPerSecond)} | ${fmt(ratio(tfdata.imagesPerSecond, ceiling))} |`,
  '',
  `featherstack (${cores} workers) vs Keras ImageDataGenerator: **${times(result.ratios.vsKerasImageDataGenerator)}**, vs tf.data: **${times(result.ratios.vsTfData)}**, cached epochs vs first epoch: **${times(result.ratios.cachedVsFirstEpoch)}**.`,
  '',
].join('\n');
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
if (values.markdown) writeFileSync(values.markdown, md);
if (values.chart) {
  await writeWorkersChart(values.chart, `images/s vs decode workers — ${size}×${size} ${colorMode}, ${files.length} images`, flows, [
    { label: 'raw ceiling', value: ceiling, color: '#888' },
    { label: 'Keras IDG', value: keras.imagesPerSecond, color: '#d62728' },
    { label: 'tf.data', value: tfdata.imagesPerSecond, color: '#ff7f0e' },
  ]);
}

process.stdout.write(`${JSON.stringify(result)}\n`);
