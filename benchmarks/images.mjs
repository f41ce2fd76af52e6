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
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const cores = availableParallelism();
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, cores + 2));
const { createImagePool, flowFromDirectory, listDirectory } = await import('@featherstack/images');
const { default: sharp } = await import('sharp');

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: join(import.meta.dirname, '..', 'packages', 'cli', 'data', 'fashion-mnist-small', 'train') },
    size: { type: 'string', default: '28' },
    'color-mode': { type: 'string', default: 'grayscale' },
    epochs: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '32' },
    json: { type: 'string' },
    markdown: { type: 'string' },
    chart: { type: 'string' },
    'no-peers': { type: 'boolean', default: false },
  },
});
const size = Number(values.size);
const colorMode = values['color-mode'];
const epochs = Number(values.epochs);
const repeats = Number(values.repeats);
const batchSize = Number(values['batch-size']);
for (const [name, v] of [['size', size], ['epochs', epochs], ['repeats', repeats], ['batch-size', batchSize]]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, received ${values[name]}`);
}
const manifest = await listDirectory(values.data);
const files = manifest.paths.map((p) => join(manifest.root, p));
const SEED_AUGMENT = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (line) => process.stderr.write(`${line}\n`);

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
  const flow = await flowFromDirectory(values.data, { targetSize: [size, size], colorMode, batchSize, seed: 1, pool, augment: SEED_AUGMENT, cache: join(dir, 'pixels.arrow') });
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
  if (values['no-peers']) return { status: 'not run', reason: '--no-peers' };
  try {
    execFileSync('python3', ['-c', 'import tensorflow, keras'], { stdio: 'ignore', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  } catch {
    return { status: 'not run', reason: 'Python tensorflow is not installed (pip install tensorflow-cpu)' };
  }
  const out = execFileSync('python3', [join(import.meta.dirname, 'peers', 'keras_images.py'), '--mode', mode, '--data', values.data, '--size', String(size), '--color-mode', colorMode, '--batch', String(batchSize), '--epochs', String(epochs)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
  });
  return { status: 'ok', ...JSON.parse(out.trim().split('\n').pop()) };
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
    log(`repeat ${r + 1}: ceiling ${runs.ceiling[r].toFixed(0)}, flows ${runs.flows.map((f) => f[r].toFixed(0)).join('/')}, fastDecode ${runs.fast[r].toFixed(0)}, cache ${c.first.toFixed(0)} → ${c.cached.toFixed(0)}, keras ${keras.imagesPerSecond ?? keras.reason}, tf.data ${tfdata.imagesPerSecond ?? tfdata.reason}`);
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
  cores,
  cpu: cpus()[0]?.model ?? 'unknown',
  repeats,
  rawCeiling: { imagesPerSecond: Math.round(ceiling), runs: runs.ceiling.map(Math.round) },
  flows: flows.map((f, i) => ({ workers: f.workers, imagesPerSecond: Math.round(f.imagesPerSecond), vsRawCeiling: ratio(f.imagesPerSecond, ceiling), runs: runs.flows[i].map(Math.round) })),
  fastDecode: { workers: cores, imagesPerSecond: Math.round(fast), vsRawCeiling: ratio(fast, ceiling) },
  pixelCache: { workers: cores, firstEpochImagesPerSecond: Math.round(cache.first), cachedImagesPerSecond: Math.round(cache.cached), cachedVsFirst: ratio(cache.cached, cache.first) },
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
if (values.chart) await writeChart(values.chart);

/** Throughput against worker count (PNG, drawn as SVG and rendered by libvips): flows, raw ceiling, peers. */
async function writeChart(file) {
  const W = 640;
  const H = 400;
  const pad = { l: 70, r: 170, t: 40, b: 50 };
  const lines = [
    { label: 'raw ceiling', color: '#888', dash: '6 4', value: ceiling },
    ...(keras.imagesPerSecond ? [{ label: 'Keras IDG', color: '#d62728', dash: '2 3', value: keras.imagesPerSecond }] : []),
    ...(tfdata.imagesPerSecond ? [{ label: 'tf.data', color: '#ff7f0e', dash: '2 3', value: tfdata.imagesPerSecond }] : []),
  ];
  const maxY = Math.max(...flows.map((f) => f.imagesPerSecond), ...lines.map((l) => l.value)) * 1.1;
  const x = (w) => pad.l + ((w - 1) / Math.max(1, cores - 1)) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v / maxY) * (H - pad.t - pad.b);
  const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const points = flows.map((f) => `${x(f.workers).toFixed(1)},${y(f.imagesPerSecond).toFixed(1)}`).join(' ');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
  <rect width="100%" height="100%" fill="white"/>
  <text x="${pad.l}" y="24" font-size="14">${esc(`images/s vs decode workers — ${size}×${size} ${colorMode}, ${files.length} images`)}</text>
  <line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="black"/>
  <line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="black"/>
  ${[0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${pad.l - 8}" y="${y(f * maxY) + 4}" text-anchor="end">${Math.round(f * maxY)}</text>`).join('\n  ')}
  ${flows.map((f) => `<text x="${x(f.workers)}" y="${H - pad.b + 18}" text-anchor="middle">${f.workers}</text>`).join('\n  ')}
  <text x="${(pad.l + W - pad.r) / 2}" y="${H - 12}" text-anchor="middle">decode workers</text>
  ${lines.map((l, i) => `<line x1="${pad.l}" y1="${y(l.value)}" x2="${W - pad.r}" y2="${y(l.value)}" stroke="${l.color}" stroke-dasharray="${l.dash}"/><text x="${W - pad.r + 8}" y="${y(l.value) + 4 + i * 0}" fill="${l.color}">${esc(`${l.label} ${Math.round(l.value)}`)}</text>`).join('\n  ')}
  <polyline points="${points}" fill="none" stroke="#1f77b4" stroke-width="2.5"/>
  ${flows.map((f) => `<circle cx="${x(f.workers)}" cy="${y(f.imagesPerSecond)}" r="4" fill="#1f77b4"/>`).join('\n  ')}
  <text x="${W - pad.r + 8}" y="${y(flows[flows.length - 1].imagesPerSecond) + 4}" fill="#1f77b4">featherstack ${Math.round(flows[flows.length - 1].imagesPerSecond)}</text>
</svg>`;
  await sharp(Buffer.from(svg)).png().toFile(file);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
