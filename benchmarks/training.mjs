#!/usr/bin/env node
// Base-training starvation: images/s of the seed's CNN fed by the image pipeline (decoding, and
// from the pixel cache) against the same batches already in memory, measured in one run. A ratio of
// 1.0 means TensorFlow never waits for images.
//
//   node benchmarks/training.mjs [--data DIR] [--epochs 2] [--batch-size 32] [--json FILE] [--markdown FILE] [--chart FILE.png]
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { machine, median, OUTPUT_OPTIONS, writeSuiteOutputs } from './lib.mjs';
import { SHIPPED_TRAIN } from '@featherstack/fixtures';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: SHIPPED_TRAIN },
    epochs: { type: 'string', default: '2' },
    'batch-size': { type: 'string', default: '32' },
    ...OUTPUT_OPTIONS,
  },
});
const epochs = Number(values.epochs);
const batchSize = Number(values['batch-size']);
const { flowFromDirectory } = await import('@featherstack/images');
const { loadTensorFlow } = await import('@featherstack/tensorflow');
const { createBaseModel, withClassifier, trainBase } = await import('@featherstack/core');
const tf = loadTensorFlow({ intraOpThreads: availableParallelism(), interOpThreads: 1 });
const augment = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };
const cacheDir = mkdtempSync(join(tmpdir(), 'featherstack-train-'));
const flow = await flowFromDirectory(values.data, {
  targetSize: [28, 28],
  colorMode: 'grayscale',
  batchSize,
  seed: 1,
  augment,
  cache: join(cacheDir, 'c.arrow'),
});
const model = withClassifier(tf, createBaseModel(tf, { inputShape: [28, 28, 1], seed: 1 }), flow.classNames.length);

/** Images/s of one epoch of `source`, trained as `run` trains (trainBase, the graph engine by default). */
async function fed(source, epoch) {
  // trainBase runs epochs from its first one: a source whose epoch 0 is `source`'s epoch `epoch`.
  const shifted = { classNames: source.classNames, classMode: source.classMode, length: source.length, epoch: (_, options) => source.epoch(epoch, options) };
  const [log] = await trainBase(tf, model, shifted, { epochs: 1 });
  return log.imagesPerSecond;
}

/** The same epoch's batches decoded first, then trained from memory. */
async function inMemory(epoch) {
  const batches = [];
  for await (const b of flow.epoch(epoch)) {
    const labels = b.labels().slice();
    batches.push({ ...b, images: b.images.slice(), classIndex: b.classIndex.slice(), labels: () => labels });
  }
  const memory = {
    classNames: flow.classNames,
    classMode: flow.classMode,
    length: batches.length,
    async *epoch() {
      yield* batches;
    },
  };
  return fed(memory, 0);
}

process.stderr.write('warm-up epoch (fills the pixel cache)…\n');
await fed(flow, 0); // warm-up: TF kernels, JIT; also fills the cache
const decodeFlow = await flowFromDirectory(values.data, { targetSize: [28, 28], colorMode: 'grayscale', batchSize, seed: 1, augment });
const rows = [];
for (let e = 1; e <= epochs; e++) {
  const memory = await inMemory(e);
  const fromCache = await fed(flow, e);
  const decoding = await fed(decodeFlow, e);
  rows.push({ epoch: e, inMemory: memory, decoding, fromCache });
  process.stderr.write(
    `epoch ${e}: in memory ${memory.toFixed(0)}, pipeline decoding ${decoding.toFixed(0)}, pipeline from cache ${fromCache.toFixed(0)} images/s\n`,
  );
}
await Promise.all([flow.close(), decodeFlow.close()]);
rmSync(cacheDir, { recursive: true, force: true });
const m = median(rows.map((r) => r.inMemory));
const d = median(rows.map((r) => r.decoding));
const c = median(rows.map((r) => r.fromCache));
const result = {
  benchmark: 'training',
  data: values.data,
  batchSize,
  ...machine(),
  imagesPerSecond: { inMemory: Math.round(m), pipelineDecoding: Math.round(d), pipelineFromCache: Math.round(c) },
  // Each epoch measures the three rows back to back: the median of those paired ratios is steadier
  // than a ratio of medians on a machine whose speed drifts from one epoch to the next.
  starvation: {
    decoding: Number(median(rows.map((r) => r.decoding / r.inMemory)).toFixed(2)),
    fromCache: Number(median(rows.map((r) => r.fromCache / r.inMemory)).toFixed(2)),
  },
  epochs: rows,
};
const md = [
  `Base training (seed CNN, 28×28 grayscale, batch ${batchSize}, seed augmentation), ${result.cores} cores: images/s, median of ${epochs} epochs; ÷ in memory is the median of the per-epoch ratios (each epoch runs the three rows back to back).`,
  '',
  '| fed from | images/s | ÷ in memory |',
  '|---|---:|---:|',
  `| batches already in memory | ${result.imagesPerSecond.inMemory} | 1.00 |`,
  `| the pipeline, decoding | ${result.imagesPerSecond.pipelineDecoding} | ${result.starvation.decoding} |`,
  `| the pipeline, pixel cache | ${result.imagesPerSecond.pipelineFromCache} | ${result.starvation.fromCache} |`,
  '',
].join('\n');
await writeSuiteOutputs(values, result, md, {
  title: `Base training images/s by what feeds it (${result.cores} cores, median of ${epochs} epochs)`,
  unit: 'images/s',
  bars: [
    { label: 'batches in memory', value: result.imagesPerSecond.inMemory, color: '#888' },
    { label: 'pipeline, decoding', value: result.imagesPerSecond.pipelineDecoding },
    { label: 'pipeline, pixel cache', value: result.imagesPerSecond.pipelineFromCache, color: '#2ca02c' },
  ],
});
process.stdout.write(`${JSON.stringify(result)}\n`);
