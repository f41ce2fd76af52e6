/**
 * The stacked workflow end to end: flows → base training → feature extraction to Arrow files →
 * head training from those files → validation accuracy.
 */
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBaseModel, type EngineKind, type EpochLog, type Precision, type ExtractProgress, extractFeatures, featureExtractor, type TrainBaseOptions, trainBase, withClassifier } from '@featherstack/core';
import { evaluateHead, readFeatureFile, saveStacked, stackModels, trainHead } from '@featherstack/head';
import { type AugmentOptions, type ColorMode, createImagePool, flowFromDirectory } from '@featherstack/images';
import { loadTensorFlow, planThreads, type ThreadPlan, tensorflowReport } from '@featherstack/tensorflow';
import { type CpuReport, cpuSampler } from './cpu.js';
import { lockDirectory } from './lock.js';
import type { HeadEpochProgress } from './progress.js';
import { augmentationGrid, writeReport } from './report.js';
import { FEATURE_LAYER, writeFileAtomic } from '@featherstack/common';

/** The Fashion-MNIST subset shipped with the CLI (200 train + 50 val images per class). */
export const SHIPPED_DATASET = fileURLToPath(new URL('../data/fashion-mnist-small', import.meta.url));

export interface WorkflowOptions {
  /** Directory with train/ and val/ subdirectories of class folders. */
  data?: string;
  /** Where feature files go. */
  out?: string;
  imageSize?: [number, number];
  colorMode?: ColorMode;
  batchSize?: number;
  baseEpochs?: number;
  headEpochs?: number;
  workers?: number;
  /** TensorFlow intra-op threads of each trainer replica (and of the eager context). Default: the thread plan's. */
  tfThreads?: number;
  /** Data-parallel trainer replicas. Default: the thread plan's (see planThreads). */
  replicas?: number;
  /** 'graph' (default where the model compiles) or 'eager' (tfjs ops, one replica). */
  engine?: EngineKind;
  /** 'float32' (default) or 'mixed-bfloat16' (graph engine: layers compute in bfloat16, weights stay float32). */
  precision?: Precision;
  seed?: number;
  augment?: AugmentOptions;
  /**
   * 'raise' (default): the first image that cannot be loaded stops the run, naming it. 'skip':
   * such images are left out of training and features, each reported once (log and `skipped`).
   */
  onError?: 'raise' | 'skip';
  /** Keep a pixel cache of the training images under out/cache (default true). */
  cache?: boolean;
  /** Score the base on the validation images after every epoch (curves in the report; default true). */
  validateBase?: boolean;
  /** Continue base training from out/checkpoints/base (written after every epoch). */
  resume?: boolean;
  /** Directory for TensorBoard event files of the base training. */
  tensorBoard?: string;
  /** Stops the run (base training and extraction); what was saved stays for `resume`. */
  signal?: AbortSignal;
  /** Progress within each base epoch (for progress bars). */
  onBaseBatch?: TrainBaseOptions['onBatch'];
  /** Progress of each feature extraction (after every batch). */
  onExtractBatch?: (split: 'train' | 'val', progress: ExtractProgress) => void;
  /** Scores after every head epoch. */
  onHeadEpoch?: (progress: HeadEpochProgress) => void;
  log?: (line: string) => void;
}

export interface WorkflowResult {
  val_accuracy: number;
  /** Stage wall times; `total` covers setup to the end of head training, `report` (evaluation, model, report) comes after it. */
  seconds: { total: number; setup: number; base_train: number; extract: number; head_train: number; report: number };
  base: EpochLog[];
  head: { epoch: number; loss: number; acc: number; valLoss: number; valAcc: number }[];
  features: { train: string; val: string; dimension: number; rows: { train: number; val: number } };
  /** The stacked model (base + head), for `featherstack predict`. */
  model: string;
  /** Summary of evaluation.json (per-class metrics and the confusion matrix are in the file). */
  evaluation: { file: string; accuracy: number; topK: Record<string, number>; macroF1: number };
  throughput: { base_images_per_second: number; extract_images_per_second: number; head_rows_per_second: number };
  /** The HTML report (curves, confusion matrix, per-class metrics, throughput, augmented samples) and its PNG charts. */
  report: { html: string; charts: Record<string, string> };
  tensorflow: ReturnType<typeof tensorflowReport>;
  workers: number;
  /** How the cores were shared: trainer replicas × threads, decode workers. */
  plan: ThreadPlan;
  /** CPU time (user, system, by thread group) and peak RSS of the run to the end of head training. */
  cpu: CpuReport;
  /** Images left out under onError: 'skip', each once, with the reason. */
  skipped: { path: string; reason: string }[];
}

/** The seed tutorial's augmentation: rescale 1/255, shear 0.2°, zoom ±20 %, horizontal flips. */
export const SEED_AUGMENT: AugmentOptions = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };

/**
 * Runs the whole stacked workflow.
 *
 * @example
 * const result = await runWorkflow({ baseEpochs: 5 });
 * console.log(result.val_accuracy);
 */
export async function runWorkflow(options: WorkflowOptions = {}): Promise<WorkflowResult> {
  // One run per --out at a time (checked before anything is written there).
  const lock = await lockDirectory(resolve(options.out ?? 'runs/latest'));
  try {
    return await workflow(options);
  } finally {
    await lock.release();
  }
}

async function workflow(options: WorkflowOptions): Promise<WorkflowResult> {
  const t0 = performance.now();
  const sampler = cpuSampler();
  const log = options.log ?? (() => {});
  const augment = options.augment ?? SEED_AUGMENT;
  // Extraction and the saved model (predict, evaluate) repeat the training images' preprocessing:
  // the rescale, whatever it is (none means 0–255 pixels, as in Keras). Normalisation that depends
  // on statistics or code (featurewise/samplewise, ZCA, a preprocessing module) is not recorded in
  // the stacked model, so the workflow refuses it rather than train on inputs inference never sees.
  const unsupported = (['featurewiseCenter', 'featurewiseStdNormalization', 'zcaWhitening', 'samplewiseCenter', 'samplewiseStdNormalization', 'preprocessingFunction'] as const).filter(
    (key) => augment[key] !== undefined && augment[key] !== false,
  );
  if (unsupported.length > 0) {
    throw new Error(
      `augment.${unsupported[0]} is not supported by the workflow (featherstack run): the stacked model records only the rescale for inference. Train with the package API (flow.fit(), @featherstack/core) for ${unsupported.join(', ')}`,
    );
  }
  const rescale = augment.rescale ?? 1;
  const data = resolve(options.data ?? SHIPPED_DATASET);
  const out = resolve(options.out ?? 'runs/latest');
  const cores = availableParallelism();
  // Replicas × threads per replica × decode workers, checked (an unreasonable value names its flag)
  // before anything starts.
  const plan = planThreads({
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.tfThreads !== undefined ? { threadsPerReplica: options.tfThreads } : {}),
    ...(options.workers !== undefined ? { decodeWorkers: options.workers } : {}),
  });
  for (const warning of plan.warnings) log(`warning: ${warning}`);
  const engine = {
    replicas: plan.replicas,
    threadsPerReplica: plan.threadsPerReplica,
    ...(options.engine ? { engine: options.engine } : {}),
    ...(options.precision ? { precision: options.precision } : {}),
  };
  const tf = loadTensorFlow({ intraOpThreads: options.tfThreads ?? cores });
  const seed = options.seed ?? 42;
  const onError = options.onError ?? 'raise';
  if (onError !== 'raise' && onError !== 'skip') throw new Error(`onError must be 'raise' or 'skip', received ${JSON.stringify(onError)}`);
  // Every epoch meets the same bad files: each is reported once.
  const skipped = new Map<string, string>();
  const onSkip = (file: { path: string; reason: string }) => {
    if (skipped.has(file.path)) return;
    skipped.set(file.path, file.reason);
    log(`skipped ${file.path}: ${file.reason}`);
  };
  const common = {
    targetSize: options.imageSize ?? ([28, 28] as [number, number]),
    colorMode: options.colorMode ?? ('grayscale' as ColorMode),
    batchSize: options.batchSize ?? 32,
    pool: createImagePool({ workers: plan.decodeWorkers }),
    seed,
    onError,
    onSkip,
  };
  // The base's first epoch writes the training images' decoded pixels to a pixel cache; later
  // base epochs and the extraction of the training features read it instead of decoding again.
  const cache = options.cache === false ? {} : { cache: join(out, 'cache', `train-${common.targetSize.join('x')}-${common.colorMode}.arrow`) };
  const trainFlow = await flowFromDirectory(join(data, 'train'), { ...common, ...cache, shuffle: true, augment });
  // Extraction is inference: larger batches amortise TensorFlow's per-op overhead and change no
  // feature (each row depends on its own image only). Up to 256 images, and no more than 4M input
  // values a batch: at 224² RGB a batch of 256 held 1.6 GB of first-layer activations (peak RSS
  // 5.5 GB) for no gain, since per-op overhead is nothing beside a 224² convolution.
  const [th, tw] = common.targetSize;
  const channels = { grayscale: 1, rgb: 3, rgba: 4 }[common.colorMode];
  const extractBatch = Math.max(common.batchSize, Math.min(256, Math.floor(2 ** 22 / (th * tw * channels))));
  const extract = { ...common, batchSize: extractBatch, shuffle: false, augment: { rescale } };
  const plainTrain = await flowFromDirectory(join(data, 'train'), { ...extract, ...cache });
  const valFlow = await flowFromDirectory(join(data, 'val'), extract);
  try {
    // Labels are class indices: val/ must hold the classes of train/ (checked before any training).
    if (JSON.stringify(valFlow.classNames) !== JSON.stringify(trainFlow.classNames)) {
      throw new Error(
        `${join(data, 'val')} has classes ${JSON.stringify(valFlow.classNames)} but ${join(data, 'train')} has ${JSON.stringify(trainFlow.classNames)}: ` +
          'validation must use the training classes (add or remove class folders so that both match)',
      );
    }
    log(
      `data: ${trainFlow.samples} train / ${valFlow.samples} val images, ${trainFlow.classNames.length} classes; ${trainFlow.workers} decode workers, ` +
        `${plan.replicas} trainer replica${plan.replicas > 1 ? 's' : ''} × ${plan.threadsPerReplica} TensorFlow thread${plan.threadsPerReplica > 1 ? 's' : ''}`,
    );
    const [h, w] = common.targetSize;
    const base = createBaseModel(tf, { inputShape: [h, w, trainFlow.image.channels], seed });
    const trainer = withClassifier(tf, base, trainFlow.classNames.length, seed + 1000);
    const t1 = performance.now();
    const history = await trainBase(tf, trainer, trainFlow, {
      ...engine,
      epochs: options.baseEpochs ?? 5,
      // A checkpoint after every epoch; `resume` continues a killed run from it.
      checkpointDir: join(out, 'checkpoints', 'base'),
      resume: options.resume ?? false,
      ...(options.tensorBoard ? { tensorBoardDir: resolve(options.tensorBoard) } : {}),
      ...(options.validateBase === false ? {} : { validation: valFlow }),
      onEpochEnd: (e, l) =>
        log(`base epoch ${e + 1}: loss ${l.loss.toFixed(4)} acc ${l.acc.toFixed(4)}${l.valLoss !== undefined ? ` val_loss ${l.valLoss.toFixed(4)} val_acc ${l.valAcc!.toFixed(4)}` : ''} (${l.imagesPerSecond.toFixed(0)} images/s)`),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onBaseBatch ? { onBatch: options.onBaseBatch } : {}),
    });
    const t2 = performance.now();
    const extractor = featureExtractor(tf, base);
    const trainFile = join(out, 'features', 'train.arrow');
    const valFile = join(out, 'features', 'val.arrow');
    // Resumed runs also resume an interrupted extraction from its journal.
    const extractOptions = (split: 'train' | 'val') => ({
      ...engine,
      resume: options.resume ?? false,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onExtractBatch ? { onBatch: (p: ExtractProgress) => options.onExtractBatch!(split, p) } : {}),
    });
    const et = await extractFeatures(tf, extractor, plainTrain, trainFile, extractOptions('train'));
    const ev = await extractFeatures(tf, extractor, valFlow, valFile, extractOptions('val'));
    for (const r of [et, ev]) if (r.discardedJournal) log(`warning: ${r.discardedJournal}; extracted ${r.path} from the start`);
    log(`features: ${et.rows} + ${ev.rows} rows × ${et.dimension} → ${join(out, 'features')}`);
    const t3 = performance.now();
    // The head reads the features back from disk: the files are the interface between the stages.
    const valSet = await readFeatureFile(valFile);
    const head = await trainHead(tf, await readFeatureFile(trainFile), valSet, {
      epochs: options.headEpochs ?? 10,
      seed,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onHeadEpoch ? { onEpochEnd: (_: number, l: HeadEpochProgress) => options.onHeadEpoch!(l) } : {}),
    });
    const t4 = performance.now();
    const cpu = sampler.stop();
    log(`head: validation accuracy ${head.valAccuracy.toFixed(4)}`);
    const evaluation = await evaluateHead(tf, head.model, valSet, { topK: [1, 3] });
    const evaluationFile = join(out, 'evaluation.json');
    await writeFileAtomic(evaluationFile, `${JSON.stringify(evaluation, null, 2)}\n`);
    await writeFileAtomic(join(out, 'history.json'), `${JSON.stringify({ base: history, head: head.history }, null, 2)}\n`);
    log(`evaluation: macro F1 ${evaluation.macro.f1.toFixed(4)}, top-3 ${evaluation.topK['3']?.toFixed(4)} → ${evaluationFile}`);
    // One model from images to probabilities, for `featherstack predict`.
    const modelDir = join(out, 'model');
    const stacked = stackModels(tf, base, head.model);
    await saveStacked(stacked, modelDir, {
      format: 1,
      classNames: trainFlow.classNames,
      inputShape: [h, w, trainFlow.image.channels],
      colorMode: common.colorMode,
      interpolation: trainFlow.image.interpolation,
      rescale,
      featureLayer: FEATURE_LAYER,
    });
    // The extractor, the stacked model and the base share the trainer's layers: disposing the
    // trainer frees them all.
    trainer.optimizer?.dispose(); // passed to compile(), so not released by dispose()
    trainer.dispose();
    head.model.dispose();
    // Throughput from the epochs' own clocks, so a resumed run reports its training, not the restore.
    const baseSeconds = history.reduce((a, e) => a + e.seconds, 0);
    const baseImages = history.length * trainFlow.samples;
    const headRows = et.rows * head.history.length;
    const stages = [
      { stage: 'base training', seconds: baseSeconds, items: baseImages, unit: 'images' },
      { stage: 'feature extraction', seconds: (t3 - t2) / 1000, items: et.rows + ev.rows, unit: 'images' },
      { stage: 'head training', seconds: (t4 - t3) / 1000, items: headRows, unit: 'rows' },
    ];
    // One image of each class (up to 8) through the training augmentation, beside its plain self;
    // images skipped in training are not shown.
    const path = (i: number) => join(trainFlow.root, trainFlow.filenames[i]!);
    const firstOfClass = trainFlow.classNames
      .slice(0, 8)
      .map((_, c) => trainFlow.classes.findIndex((k, i) => k === c && !skipped.has(path(i))))
      .filter((i) => i >= 0);
    const samples = await augmentationGrid({
      files: firstOfClass.map(path),
      augment,
      targetSize: common.targetSize,
      colorMode: common.colorMode,
      pool: common.pool,
      seed,
    });
    const tfReport = tensorflowReport();
    const report = await writeReport(join(out, 'report.html'), {
      title: `featherstack run — ${data}`,
      facts: [
        ['dataset', data],
        ['images', `${trainFlow.samples} train / ${valFlow.samples} val, ${trainFlow.classNames.length} classes, ${h}×${w} ${common.colorMode}`],
        ['epochs', `base ${history.length}, head ${head.history.length} (batch ${common.batchSize})`],
        ['feature dimension', String(et.dimension)],
        ['seconds (wall)', `${((t4 - t0) / 1000).toFixed(1)} to the end of head training: setup ${((t1 - t0) / 1000).toFixed(1)}, base ${((t2 - t1) / 1000).toFixed(1)}, extraction ${((t3 - t2) / 1000).toFixed(1)}, head ${((t4 - t3) / 1000).toFixed(1)}`],
        ['augmentation', JSON.stringify(augment)],
        ['machine', `${cores} cores, ${trainFlow.workers} decode workers, TensorFlow ${tfReport.tensorflowVersion} (${tfReport.backend}), ${history.at(-1)?.engine ?? 'graph'} engine on ${plan.replicas} replica(s) × ${plan.threadsPerReplica} thread(s)`],
      ],
      base: history,
      head: head.history,
      evaluation,
      stages,
      stagesNote: "Base training from the epochs' own clocks (all epochs, also those a resumed run restored); extraction and head training are the wall times of their stages (the head's includes reading the feature files and scoring every epoch).",
      samples: { png: samples, caption: 'Each row: one training image of a class, first without augmentation, then six draws of the training augmentation (as the base sees them; each tile stretched to full contrast).' },
    });
    const t5 = performance.now();
    return {
      val_accuracy: head.valAccuracy,
      seconds: { total: (t4 - t0) / 1000, setup: (t1 - t0) / 1000, base_train: (t2 - t1) / 1000, extract: (t3 - t2) / 1000, head_train: (t4 - t3) / 1000, report: (t5 - t4) / 1000 },
      base: history,
      head: head.history,
      features: { train: trainFile, val: valFile, dimension: et.dimension, rows: { train: et.rows, val: ev.rows } },
      model: modelDir,
      evaluation: { file: evaluationFile, accuracy: evaluation.accuracy, topK: evaluation.topK, macroF1: evaluation.macro.f1 },
      throughput: { base_images_per_second: baseImages / baseSeconds, extract_images_per_second: (et.rows + ev.rows) / ((t3 - t2) / 1000), head_rows_per_second: headRows / ((t4 - t3) / 1000) },
      report,
      tensorflow: tfReport,
      workers: trainFlow.workers,
      plan,
      cpu,
      skipped: [...skipped].map(([path, reason]) => ({ path, reason })),
    };
  } finally {
    await Promise.all([trainFlow.close(), plainTrain.close(), valFlow.close()]);
    await common.pool.close();
  }
}
