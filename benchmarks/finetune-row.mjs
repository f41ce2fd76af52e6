#!/usr/bin/env node
// One featherstack row of benchmarks/finetune.mjs, in a process of its own (its peak RSS its own):
// a pretrained-style backbone file fine-tuned as Keras's transfer-learning guide does — every layer
// with weights trainable, BatchNormalization frozen, Adam 1e-5, batch 32, the seed's augmentation
// with preprocess_input — through `train-base --model` (trainBaseStage). Prints one JSON line with
// each epoch's images/s.
//
//   node benchmarks/finetune-row.mjs --model FILE.keras --data DIR --preprocess tf|caffe [--precision float32|mixed-bfloat16] [--epochs 2] [--bn-train]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKBONE_ROW_OPTIONS, requireModelAndData } from './lib.mjs';

const { values } = parseArgs({
  options: {
    ...BACKBONE_ROW_OPTIONS,
    epochs: { type: 'string', default: '2' },
    'fine-tune': { type: 'string', default: 'all' },
    'bn-train': { type: 'boolean', default: false },
  },
});
requireModelAndData(values);
const { cpuSampler, seedAugment, trainBaseStage } = await import('@featherstack/pipeline');
const out = mkdtempSync(join(tmpdir(), 'featherstack-finetune-'));
try {
  const sampler = cpuSampler();
  const fineTune = values['fine-tune'] === 'all' ? 'all' : Number(values['fine-tune']);
  const result = await trainBaseStage({
    train: values.data,
    out,
    targetSize: [224, 224],
    epochs: Number(values.epochs),
    model: values.model,
    fineTune,
    bnTrain: values['bn-train'],
    batchSize: 32,
    // As train-base does: the flows take the preprocess_input mode from the augmentation.
    augment: { ...seedAugment(values.preprocess), preprocess: values.preprocess },
    precision: values.precision,
    log: () => {},
  });
  const cpu = sampler.stop();
  const history = result.history;
  process.stdout.write(
    `${JSON.stringify({
      imagesPerSecond: history.map((e) => e.imagesPerSecond),
      engine: history.at(-1).engine,
      replicas: history.at(-1).replicas,
      layers: result.fineTuned.length,
      precision: values.precision,
      bnTrain: values['bn-train'],
      cpu,
    })}\n`,
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
