/**
 * The workflow's stages as separate commands — `train-base`, `extract`, `train-head` — so each can
 * run on its own machine or schedule; files are the interface between them.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type EngineKind,
  type ExtractProgress,
  extractFeatures,
  extractionBatchFor,
  extractionWorkers,
  featureExtractor,
  loadBaseModel,
  loadModelFile,
  type Pooling,
  type Precision,
  resolveCut,
  saveKerasFile,
} from '@featherstack/core';
import { evaluateHead, type HeadEpochProgress, loadStacked, openFeatureStream, readFeatureFile, readFeatureFiles, trainHead } from '@featherstack/head';
import type { ColorMode, PreprocessMode } from '@featherstack/images';
import { plainFlow } from './flows.js';
import { inputImageSettings } from './imported.js';
import { lockOutputFile } from './lock.js';
import { engineOptions, RUN_DEFAULTS } from './options.js';
import { loadTensorFlow, planExtraction } from '@featherstack/tensorflow';
import { type BaseJob, inProcessTrainer, progress, startTrainer } from './trainer/trainer.js';
import { controlsOf, STACKED_METADATA_FILE, type TrainingControls, writeFileAtomic } from '@featherstack/common';

/** Trains a base (in a worker thread with `worker: true`) and saves it under `out/base`. */
export async function trainBaseStage(options: Omit<BaseJob, 'saveTo'> & { out: string; worker?: boolean; log: (line: string) => void }) {
  const { out, worker, log, ...job } = options;
  const spec: BaseJob = { ...job, saveTo: resolve(out, 'base') };
  const onEpoch = (l: { epoch: number; loss: number; acc: number; valLoss?: number; valAcc?: number }) =>
    log(
      `base epoch ${l.epoch + 1}: loss ${l.loss.toFixed(4)} acc ${l.acc.toFixed(4)}${l.valLoss !== undefined ? ` val_loss ${l.valLoss.toFixed(4)} val_acc ${l.valAcc!.toFixed(4)}` : ''}`,
    );
  let result: { history: unknown[]; model: string; fineTuned?: string[] };
  if (worker) {
    const trainer = startTrainer();
    try {
      result = await trainer.api.trainBase(spec, progress(onEpoch));
    } finally {
      await trainer.close();
    }
  } else result = await inProcessTrainer().trainBase(spec, onEpoch);
  if (result.fineTuned)
    log(
      `fine-tuned ${result.fineTuned.length} of ${spec.model}'s layers (BatchNormalization ${spec.bnTrain ? 'training on batch statistics' : 'frozen, in inference mode'}), up to ${result.fineTuned.at(-1)}`,
    );
  await writeFileAtomic(join(resolve(out), 'base-history.json'), `${JSON.stringify(result.history, null, 2)}\n`);
  return result;
}

/** Extracts features of a directory's images with a saved or imported base. */
export async function extractStage(options: ExtractStageOptions) {
  // One extraction per output file (taken before anything is loaded).
  const lock = await lockOutputFile(resolve(options.out));
  try {
    return await extractUnlocked(options);
  } finally {
    await lock.release();
  }
}

export interface ExtractStageOptions {
  model: string;
  data: string;
  out: string;
  /** Default: the model's input size (required when the model's input has no fixed size). */
  targetSize?: [number, number];
  /** Default: the model's input channels. */
  colorMode?: ColorMode;
  /** Default: sized from this model's activation memory (extractionBatchFor). */
  batchSize?: number;
  shard?: { index: number; count: number };
  /** The rescale the base was trained with (default the seed augmentation's, 1/255; 1 with a preprocess mode). */
  rescale?: number;
  featureLayer?: string;
  pooling?: Pooling;
  preprocess?: PreprocessMode;
  l2?: boolean;
  resume?: boolean;
  replicas?: number;
  tfThreads?: number;
  engine?: EngineKind;
  precision?: Precision;
  onBatch?: (progress: ExtractProgress) => void;
  log?: (line: string) => void;
}

async function extractUnlocked(options: ExtractStageOptions) {
  const tf = loadTensorFlow();
  const base = await loadBaseModel(tf, options.model, options.featureLayer);
  const cut = resolveCut(base, options);
  const { pooling } = cut;
  const extractor = featureExtractor(tf, base, cut.layer, pooling);
  const { targetSize, colorMode } = inputImageSettings(base, options.model, options);
  const plan = planExtraction({
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.tfThreads !== undefined ? { threadsPerReplica: options.tfThreads } : {}),
  });
  const batchSize = options.batchSize ?? extractionBatchFor(extractor, { replicas: plan.replicas });
  // The cores split between decoding and TensorFlow by their cost per image with this model.
  const workers = extractionWorkers(extractor, plan.cores);
  options.log?.(`features from '${cut.layer}' (${cut.reason}), pooling ${pooling}; batch ${batchSize}, ${workers} decode worker${workers > 1 ? 's' : ''}`);
  const preprocess = options.preprocess ?? RUN_DEFAULTS.preprocess;
  const settings = { imageSize: targetSize, colorMode, batchSize, seed: RUN_DEFAULTS.seed, preprocess, workers };
  const rescale = options.rescale ?? (preprocess === 'none' ? (RUN_DEFAULTS.augment.rescale ?? 1) : 1);
  const flow = await plainFlow(options.data, settings, rescale, options.shard ? { shard: options.shard } : {});
  try {
    return await extractFeatures(tf, extractor, flow, resolve(options.out), {
      featureLayer: cut.layer,
      pooling,
      resume: options.resume ?? false,
      ...engineOptions(options),
      ...(options.l2 ? { transform: { l2: true } } : {}),
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
  } finally {
    await flow.close();
    base.dispose();
  }
}

/** Trains a head from feature files and saves it (tfjs layers format) with its evaluation. */
export async function trainHeadStage(
  options: TrainingControls & {
    keepBest?: boolean;
    train: string;
    val: string;
    out: string;
    units: number[];
    epochs: number;
    patience?: number;
    stream?: number;
    recurrent?: { kind: 'gru' | 'lstm'; units: number; timesteps?: number };
    seed: number;
    onEpochEnd?: (progress: HeadEpochProgress) => void;
  },
) {
  const tf = loadTensorFlow();
  // The output directory first: a head trained for minutes must have somewhere to go.
  await mkdir(resolve(options.out), { recursive: true });
  const train = options.stream
    ? await openFeatureStream(options.train, { shuffleBuffer: options.stream, seed: options.seed })
    : await readFeatureFiles(options.train);
  const val = await readFeatureFile(options.val);
  const head = await trainHead(tf, train, val, {
    units: options.units,
    epochs: options.epochs,
    seed: options.seed,
    ...(options.patience !== undefined ? { patience: options.patience } : {}),
    ...controlsOf(options),
    ...(options.keepBest ? { keepBest: true } : {}),
    ...(options.recurrent ? { recurrent: options.recurrent } : {}),
    ...(options.onEpochEnd ? { onEpochEnd: (_: number, l: HeadEpochProgress) => options.onEpochEnd!(l) } : {}),
  });
  const dir = resolve(options.out, 'head');
  await mkdir(dir, { recursive: true });
  await head.model.save(`file://${dir}`);
  const evaluation = await evaluateHead(tf, head.model, val, { topK: [1, 3] });
  await writeFileAtomic(join(resolve(options.out), 'head-evaluation.json'), `${JSON.stringify(evaluation, null, 2)}\n`);
  await writeFileAtomic(join(resolve(options.out), 'head-history.json'), `${JSON.stringify(head.history, null, 2)}\n`);
  head.model.dispose();
  return {
    model: join(dir, 'model.json'),
    valAccuracy: head.valAccuracy,
    stoppedEarly: head.stoppedEarly,
    evaluation: { accuracy: evaluation.accuracy, topK: evaluation.topK, macroF1: evaluation.macro.f1 },
  };
}

/**
 * Writes a model as a Keras 3 `.keras` file: a stacked model directory (from run or train-head; its
 * image settings and class names go into the archive as featherstack.json) or any base featherstack
 * loads (.keras, .h5, tfjs model.json).
 *
 * @example
 * await exportKerasStage({ model: 'runs/latest/model', out: 'stacked.keras' });
 * // python: keras.saving.load_model('stacked.keras').predict(x)
 */
export async function exportKerasStage(options: { model: string; out: string }) {
  const tf = loadTensorFlow();
  const source = resolve(options.model);
  const stacked = existsSync(join(source, STACKED_METADATA_FILE));
  const { model, metadata } = stacked ? await loadStacked(tf, source) : { model: await loadModelFile(tf, source), metadata: undefined };
  try {
    await saveKerasFile(model, options.out, metadata ? { [STACKED_METADATA_FILE]: `${JSON.stringify(metadata, null, 2)}\n` } : {});
  } finally {
    model.dispose();
  }
  return {
    out: resolve(options.out),
    from: source,
    layers: model.layers.length,
    ...(metadata
      ? { classNames: metadata.classNames, note: 'inputs are pixels after the stacked model’s rescale and preprocess (featherstack.json in the archive)' }
      : {}),
  };
}
