#!/usr/bin/env node
// One featherstack row of benchmarks/backbones.mjs, in a process of its own (so that its peak RSS is
// its own): a pretrained-style backbone file imported, cut at its output, and extractFeatures over
// the photo directory (decode workers → compiled graph → Arrow file), a cold pass then the timed one.
// Prints one JSON line.
//
//   node benchmarks/backbone-row.mjs --model FILE.keras --data DIR --preprocess tf|caffe|none [--precision float32|mixed-bfloat16] [--workers N]
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKBONE_ROW_OPTIONS, requireModelAndData } from './lib.mjs';

const { values } = parseArgs({
  options: {
    ...BACKBONE_ROW_OPTIONS,
    workers: { type: 'string' },
  },
});
requireModelAndData(values);
const cores = availableParallelism();
const { cpuSampler } = await import('@featherstack/pipeline');
const { loadTensorFlow, planExtraction } = await import('@featherstack/tensorflow');
const { extractFeatures, extractionBatchFor, extractionWorkers, featureExtractor, loadBaseModel } = await import('@featherstack/core');
const { compileModel } = await import('@featherstack/core/internal');
const { flowFromDirectory } = await import('@featherstack/images');
const tf = loadTensorFlow({ intraOpThreads: cores });
const base = await loadBaseModel(tf, values.model);
const extractor = featureExtractor(tf, base);
const plan = planExtraction({});
const batchSize = extractionBatchFor(extractor, { replicas: plan.replicas });
const compiled = compileModel(extractor, { train: false });
const workers = values.workers ? Number(values.workers) : extractionWorkers(extractor, plan.cores);
const flow = await flowFromDirectory(values.data, {
  targetSize: extractor.inputs[0].shape.slice(1, 3),
  colorMode: 'rgb',
  batchSize,
  shuffle: false,
  workers,
  augment: { preprocess: values.preprocess },
});
const dir = mkdtempSync(join(tmpdir(), 'featherstack-backbone-'));
try {
  // Two passes: the first cold (session setup, the graph optimiser, oneDNN's primitive creation,
  // the page cache), the second timed as the peers time theirs, after an untimed warm-up.
  const cold = performance.now();
  await extractFeatures(tf, extractor, flow, join(dir, 'cold.arrow'), { precision: values.precision });
  const coldSeconds = (performance.now() - cold) / 1000;
  const sampler = cpuSampler();
  const started = performance.now();
  const result = await extractFeatures(tf, extractor, flow, join(dir, 'features.arrow'), { precision: values.precision });
  const seconds = (performance.now() - started) / 1000;
  const cpu = sampler.stop();
  process.stdout.write(
    `${JSON.stringify({
      imagesPerSecond: result.rows / seconds,
      seconds,
      coldImagesPerSecond: result.rows / coldSeconds,
      rows: result.rows,
      dimension: result.dimension,
      engine: result.engine,
      replicas: result.replicas,
      ...(result.fallback ? { fallback: result.fallback } : {}),
      batchSize,
      workers,
      layers: compiled.layers,
      folded: compiled.folded,
      precision: values.precision,
      cpu,
    })}\n`,
  );
} finally {
  await flow.close();
  rmSync(dir, { recursive: true, force: true });
}
