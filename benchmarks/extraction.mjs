#!/usr/bin/env node
// Feature extraction: images/s of extractFeatures (decode → seed CNN → Arrow file) against decode
// workers, from the pixel cache, and TensorFlow alone on batches already in memory (the ceiling),
// with the seed's Keras extract_features (model.predict over ImageDataGenerator) as peer. All
// measured in one run, rows interleaved over repeats; medians reported.
//
//   node benchmarks/extraction.mjs [--data DIR] [--size 28] [--color-mode grayscale] [--batch-size 256]
//        [--repeats 3] [--no-peers] [--json FILE] [--markdown FILE] [--chart FILE.png]
//
// DIR holds class folders. The CNN is the seed's, untrained: its weights do not change the cost.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, runPeer, writeWorkersChart, SHIPPED_IMAGE_OPTIONS } from './lib.mjs';

const { values } = parseArgs({
  options: {
    ...SHIPPED_IMAGE_OPTIONS,
    'batch-size': { type: 'string', default: '256' },
    repeats: { type: 'string', default: '3' },
    ...PEER_OPTION,
    ...OUTPUT_OPTIONS,
  },
});
const data = resolve(values.data);
const size = Number(values.size);
const colorMode = values['color-mode'];
const batchSize = Number(values['batch-size']);
const repeats = Number(values.repeats);
const { cores } = machine();

const { createImagePool, flowFromDirectory } = await import('@featherstack/images');
const { loadTensorFlow } = await import('@featherstack/tensorflow');
const { createBaseModel, extractFeatures, featureExtractor } = await import('@featherstack/core');
const tf = loadTensorFlow({ intraOpThreads: cores });
const channels = colorMode === 'grayscale' ? 1 : colorMode === 'rgb' ? 3 : 4;
const base = createBaseModel(tf, { inputShape: [size, size, channels], seed: 1 });
const extractor = featureExtractor(tf, base);
const dir = mkdtempSync(join(tmpdir(), 'featherstack-extract-'));
const options = (pool, extra = {}) => ({ targetSize: [size, size], colorMode, batchSize, shuffle: false, augment: { rescale: 1 / 255 }, pool, ...extra });

// A timed run extracts the dataset `passes` times (≥ 10,000 images), so that a run lasts seconds,
// not the few hundred milliseconds in which this shared machine's noise dominates.
let passes = 1;

/** Images/s of `passes` extractFeatures of `flow`, each into a fresh file. */
async function extractRate(flow, name) {
  const file = join(dir, `${name}.arrow`);
  const started = performance.now();
  let rows = 0;
  for (let p = 0; p < passes; p++) {
    rows += (await extractFeatures(tf, extractor, flow, file)).rows;
    rmSync(file, { force: true });
  }
  return rows / ((performance.now() - started) / 1000);
}

/**
 * Images/s of the extractor alone on batches already in memory (no decoding, no file), on the
 * engine extractFeatures uses: the compiled graph on the thread plan's replicas.
 */
async function ceilingRate(batches) {
  const { compileModel, GraphReplicas } = await import('@featherstack/core/internal');
  const { planThreads } = await import('@featherstack/tensorflow');
  const plan = planThreads();
  const replicas = GraphReplicas.open(compileModel(extractor, { train: false }), { replicas: plan.replicas, threadsPerReplica: plan.threadsPerReplica });
  await replicas.setWeights(extractor.getWeights().map((w) => w.dataSync()));
  const started = performance.now();
  let n = 0;
  for (const b of Array.from({ length: passes }, () => batches).flat()) {
    await replicas.predict(b.images, b.shape[0], new Float32Array(b.shape[0] * replicas.compiled.outputSize));
    n += b.shape[0];
  }
  const rate = n / ((performance.now() - started) / 1000);
  await replicas.close();
  return rate;
}

const pools = Array.from({ length: cores }, (_, i) => createImagePool({ workers: i + 1 }));
const flows = [];
try {
  for (const pool of pools) flows.push(await flowFromDirectory(data, options(pool)));
  const cached = await flowFromDirectory(data, options(pools[cores - 1], { cache: join(dir, 'pixels.arrow') }));
  flows.push(cached);
  const samples = flows[0].samples;
  passes = Math.max(1, Math.ceil(10_000 / samples));
  log(
    `extraction: ${samples} images (${passes} passes per timed run) from ${data} at ${size}×${size} ${colorMode}, batch ${batchSize}, ${cores} cores, ${repeats} interleaved repeats`,
  );
  const batches = [];
  for await (const b of flows[cores - 1].epoch(0)) batches.push({ images: b.images.slice(), shape: b.shape });
  // Warm-up: TensorFlow kernels, page cache, and the pixel cache (filled by its first epoch).
  await ceilingRate(batches);
  for (const [i, flow] of flows.entries()) await extractRate(flow, `warm-${i}`);
  const runs = { ceiling: [], workers: Array.from({ length: cores }, () => []), cached: [], keras: [] };
  let keras;
  for (let r = 0; r < repeats; r++) {
    runs.ceiling.push(await ceilingRate(batches));
    for (let w = 0; w < cores; w++) runs.workers[w].push(await extractRate(flows[w], `w${w + 1}`));
    runs.cached.push(await extractRate(cached, 'cached'));
    // The peer runs inside the repeat too (same passes), so drift lands on it as on the other rows.
    keras = runPeer(
      'keras_stages.py',
      ['--stage', 'extraction', '--data', data, '--size', size, '--color-mode', colorMode, '--batch', batchSize, '--passes', passes],
      { enabled: !values['no-peers'] },
    );
    if (keras.status === 'ok') runs.keras.push(keras.imagesPerSecond[0]);
    log(
      `repeat ${r + 1}: ceiling ${runs.ceiling.at(-1).toFixed(0)}, ${runs.workers.map((x, w) => `${w + 1} workers ${x.at(-1).toFixed(0)}`).join(', ')}, cache ${runs.cached.at(-1).toFixed(0)}, keras ${keras.status === 'ok' ? runs.keras.at(-1).toFixed(0) : keras.status} images/s`,
    );
  }
  if (runs.keras.length === repeats) keras = { ...keras, imagesPerSecond: runs.keras };
  else if (keras.status === 'ok') keras = { status: 'failed', reason: 'the Keras peer failed in some repeats' };
  const ceiling = median(runs.ceiling);
  const byWorkers = runs.workers.map((x, w) => ({ workers: w + 1, imagesPerSecond: Math.round(median(x)) }));
  const best = byWorkers[cores - 1].imagesPerSecond;
  const kerasRate = keras.status === 'ok' ? Math.round(median(keras.imagesPerSecond)) : null;
  const result = {
    benchmark: 'extraction',
    data,
    samples,
    passes,
    size,
    colorMode,
    batchSize,
    repeats,
    ...machine(),
    imagesPerSecond: { ceiling: Math.round(ceiling), workers: byWorkers, pixelCache: Math.round(median(runs.cached)), keras: kerasRate },
    ratios: {
      ofCeiling: Number((best / ceiling).toFixed(2)),
      pixelCacheOfCeiling: Number((median(runs.cached) / ceiling).toFixed(2)),
      overKeras: kerasRate ? Number((best / kerasRate).toFixed(2)) : null,
    },
    keras,
    runs,
  };
  const md = [
    `Feature extraction (seed CNN → 64 features → Arrow file), ${samples} images at ${size}×${size} ${colorMode} (${passes} passes per run), batch ${batchSize}, ${cores} cores: images/s, median of ${repeats} interleaved repeats.`,
    '',
    '| extraction | images/s | ÷ ceiling |',
    '|---|---:|---:|',
    `| TensorFlow alone (the graph engine), batches in memory (ceiling) | ${Math.round(ceiling)} | 1.00 |`,
    ...byWorkers.map(
      (b) => `| featherstack, ${b.workers} decode worker${b.workers > 1 ? 's' : ''} | ${b.imagesPerSecond} | ${(b.imagesPerSecond / ceiling).toFixed(2)} |`,
    ),
    `| featherstack, from the pixel cache | ${result.imagesPerSecond.pixelCache} | ${result.ratios.pixelCacheOfCeiling} |`,
    kerasRate
      ? `| Keras, the seed's extract_features (model.predict per batch over ImageDataGenerator) | ${kerasRate} | ${(kerasRate / ceiling).toFixed(2)} |`
      : `| Keras, the seed's extract_features | ${keras.status} (${keras.reason}) | |`,
    '',
    kerasRate ? `featherstack (${cores} workers) ÷ Keras: **${result.ratios.overKeras}×**.` : '',
    '',
  ].join('\n');
  if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  if (values.markdown) writeFileSync(values.markdown, md);
  if (values.chart) {
    await writeWorkersChart(values.chart, `Extraction images/s vs decode workers (${samples} images, ${size}×${size} ${colorMode})`, byWorkers, [
      { label: 'ceiling', value: ceiling, color: '#888' },
      { label: 'pixel cache', value: median(runs.cached), color: '#2ca02c' },
      { label: 'Keras', value: kerasRate, color: '#d62728' },
    ]);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await Promise.all(flows.map((f) => f.close()));
  await Promise.all(pools.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
}
