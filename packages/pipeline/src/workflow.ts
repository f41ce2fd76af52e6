/**
 * The stacked workflow end to end, stage by stage: flows → base training → feature extraction to
 * Arrow files → head training from those files → evaluation, the stacked model and the report.
 */
import { availableParallelism, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { CHANNELS, controlsOf, FEATURE_LAYER, resolveControls, watchedValidation, writeFileAtomic } from '@featherstack/common';
import {
  checkCut,
  createBaseModel,
  type EpochLog,
  type ExtractProgress,
  type ExtractResult,
  openExtraction,
  extractionBatchFor,
  extractionWorkers,
  featureExtractor,
  freezeForFineTuning,
  type Pooling,
  type TrainBaseOptions,
  trainBase,
  trainingFootprint,
  withClassifier,
} from '@featherstack/core';
import {
  type Evaluation,
  evaluateHead,
  type HeadEpochProgress,
  type HeadResult,
  readFeatureFile,
  saveStacked,
  stackModels,
  trainHead,
} from '@featherstack/head';
import { createImagePool, type ImageFlow, type ImagePool } from '@featherstack/images';
import type { WrittenReport } from '@featherstack/report';
import { type LayersModel, loadTensorFlow, planExtraction, planThreads, type Tf, type ThreadPlan, type tensorflowReport } from '@featherstack/tensorflow';
import { type CpuReport, cpuSampler } from './cpu.js';
import { describeCachePlan, type ImageSettings, lossless, plainFlow, runCache, trainingFlow } from './flows.js';
import { featureLayerOf, type ImportedBase, importBase } from './imported.js';
import { lockDirectory } from './lock.js';
import { type ResolvedRunOptions, type RunConfig, resolveRunOptions } from './options.js';
import { Clock, type Features, lastStage, type Stage, writeRunReport } from './run-report.js';

/** Callbacks and a signal: what the API adds to the run options. */
export interface WorkflowHooks {
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

/** The run options (as flags and the config file name them; see RUN_DEFAULTS) and the hooks. */
export type WorkflowOptions = RunConfig & WorkflowHooks;

export interface WorkflowResult {
  val_accuracy: number;
  /**
   * Stage wall times; `total` covers setup to the end of head training (of re-extraction, with
   * fine-tuning), `report` (evaluation, model, report) comes after it.
   */
  seconds: {
    total: number;
    setup: number;
    /** Of setup: loading native TensorFlow (Python's `import tensorflow`); 0 when the process had loaded it. */
    tensorflow_load: number;
    base_train: number;
    extract: number;
    head_train: number;
    /** With fineTune: the second phase (base and head together) and the extraction after it. */
    fine_tune?: number;
    re_extract?: number;
    /** With retrainHead: the fresh head trained on the fine-tuned base's features. */
    retrain_head?: number;
    report: number;
  };
  base: EpochLog[];
  head: HeadResult['history'];
  /**
   * With fineTune: the second phase's epochs and the layers of the imported base that trained. With
   * retrainHead, `head` is the fresh head trained on the fine-tuned features (the published one),
   * and `frozenHead` phase 1's, trained on the frozen features.
   */
  fineTune?: { history: EpochLog[]; layers: string[]; frozenHead?: HeadResult['history'] };
  features: { train: string; val: string; dimension: number; rows: { train: number; val: number } };
  /** The stacked model (base + head), for `featherstack predict`. */
  model: string;
  /** Summary of evaluation.json (per-class metrics and the confusion matrix are in the file). */
  evaluation: { file: string; accuracy: number; topK: Record<string, number>; macroF1: number };
  throughput: { base_images_per_second: number; extract_images_per_second: number; head_rows_per_second: number };
  /** The HTML report (curves, confusion matrix, per-class metrics, throughput, augmented samples) and its PNG charts. */
  report: WrittenReport;
  tensorflow: ReturnType<typeof tensorflowReport>;
  workers: number;
  /** How the cores were shared: trainer replicas × threads, decode workers. */
  plan: ThreadPlan;
  /** CPU time (user, system, by thread group) and peak RSS of the run to the end of head training. */
  cpu: CpuReport;
  /** Images left out under onError: 'skip', each once, with the reason. */
  skipped: { path: string; reason: string }[];
  /** What the training images were read from, and the pixel cache chosen for them (as run's log says it). */
  data: { train: 'pack' | 'directory'; cache: string };
}

/**
 * Runs the whole stacked workflow.
 *
 * @example
 * const result = await runWorkflow({ baseEpochs: 5 });
 * console.log(result.val_accuracy);
 */
export async function runWorkflow(options: WorkflowOptions = {}): Promise<WorkflowResult> {
  const { signal, onBaseBatch, onExtractBatch, onHeadEpoch, log, ...rest } = options;
  const resolved = resolveRunOptions(rest);
  checkReplayable(resolved.augment);
  // One run per --out at a time (checked before anything is written there).
  const lock = await lockDirectory(resolve(resolved.out));
  try {
    return await new Workflow(resolved, { signal, onBaseBatch, onExtractBatch, onHeadEpoch, log }).run();
  } finally {
    await lock.release();
  }
}

/**
 * Extraction and the saved model (predict, evaluate) replay the training images' preprocessing:
 * the rescale, whatever it is (none means 0–255 pixels, as in Keras). Normalisation that depends
 * on statistics or code is not recorded in the stacked model: refused rather than train on inputs
 * inference never sees.
 */
function checkReplayable(augment: ResolvedRunOptions['augment']): void {
  const unsupported = (
    ['featurewiseCenter', 'featurewiseStdNormalization', 'zcaWhitening', 'samplewiseCenter', 'samplewiseStdNormalization', 'preprocessingFunction'] as const
  ).filter((key) => augment[key] !== undefined && augment[key] !== false);
  if (unsupported.length > 0) {
    throw new Error(
      `augment.${unsupported[0]} is not supported by the workflow (featherstack run): the stacked model records only the rescale for inference. Train with the package API (flow.fit(), @featherstack/core) for ${unsupported.join(', ')}`,
    );
  }
}

class Workflow {
  private readonly clock = new Clock();
  private readonly sampler = cpuSampler();
  private readonly log: (line: string) => void;
  private readonly out: string;
  private readonly data: string;
  /** Every epoch meets the same bad files: each is reported once. */
  private readonly skipped = new Map<string, string>();
  private plan!: ThreadPlan;

  constructor(
    private readonly o: ResolvedRunOptions,
    private readonly hooks: WorkflowHooks,
  ) {
    this.log = hooks.log ?? (() => {});
    this.out = resolve(o.out);
    this.data = resolve(o.data);
  }

  private get signal() {
    return this.hooks.signal ? { signal: this.hooks.signal } : {};
  }

  async run(): Promise<WorkflowResult> {
    const { o } = this;
    // Replicas × threads per replica × decode workers, checked (an unreasonable value names its
    // flag) before anything starts.
    const plan = planThreads({
      ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
      ...(o.tfThreads !== undefined ? { threadsPerReplica: o.tfThreads } : {}),
      ...(o.workers !== undefined ? { decodeWorkers: o.workers } : {}),
    });
    this.plan = plan;
    for (const warning of plan.warnings) this.log(`warning: ${warning}`);
    const tf = loadTensorFlow({ intraOpThreads: o.tfThreads ?? availableParallelism() });
    this.clock.mark('tensorflow');
    // An imported base decides the image size and channels (unless given, then they must agree),
    // and, frozen, only extracts: the cores are split between decoding and TensorFlow by their
    // cost per image with this model (extractionWorkers), unless --workers says otherwise.
    const imported = o.base ? await importBase(tf, o, this.log) : undefined;
    if (imported && o.workers === undefined) this.plan = { ...plan, decodeWorkers: extractionWorkers(imported.extractor, plan.cores) };
    const pool = createImagePool({ workers: this.plan.decodeWorkers });
    try {
      return await this.runWith(tf, pool, imported);
    } finally {
      await pool.close();
    }
  }

  private async runWith(tf: Tf, pool: ImagePool, imported: ImportedBase | undefined): Promise<WorkflowResult> {
    const { o, plan } = this;
    // The seed CNN is built before the flows: like an imported base, it sizes the extraction batch.
    const seedBase = imported ? undefined : createBaseModel(tf, { inputShape: [...o.imageSize, CHANNELS[o.colorMode]], seed: o.seed });
    // The seed CNN is cut where --feature-layer and --pooling say: checked before anything trains.
    if (seedBase) checkCut(seedBase, o.featureLayer ?? FEATURE_LAYER, o.pooling);
    const settings: ImageSettings = {
      imageSize: imported?.imageSize ?? o.imageSize,
      colorMode: imported?.colorMode ?? o.colorMode,
      batchSize: o.batchSize,
      seed: o.seed,
      onError: o.onError,
      onSkip: (f) => this.skip(f),
      pool,
      preprocess: o.preprocess,
      ...(o.shuffleBuffer !== undefined ? { shuffleBuffer: o.shuffleBuffer } : {}),
    };
    // The base's first epoch writes the training images' decoded pixels to a pixel cache; later
    // base epochs and the extraction of the training features read it instead of decoding again.
    // A frozen imported base reads every image once: no training flow, no cache.
    const cache = imported ? undefined : runCache(this.out, settings, o.cache, o.cacheBudget);
    const train = imported ? undefined : await trainingFlow(join(this.data, 'train'), settings, o.augment, cache);
    // Said first, before anything is written: the cache chosen and its size, or why there is none.
    if (train && cache) this.log(describeCachePlan(train.cachePlan));
    // Extraction reads the cache only when it gives back the decoded pixels (raw, png): features
    // never depend on a lossy training cache.
    const cacheUsed = cache && lossless(cache) && (train?.cachePlan.state === 'write' || train?.cachePlan.state === 'read') ? cache : undefined;
    // Extraction has a layout of its own (planExtraction: a one-thread replica per core unless
    // --replicas or --tf-threads say otherwise), and its batch is sized for it.
    const extractPlan = planExtraction({
      ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
      ...(o.tfThreads !== undefined ? { threadsPerReplica: o.tfThreads } : {}),
    });
    const extractSettings = {
      ...settings,
      batchSize: extractionBatchFor(imported?.extractor ?? seedBase!, { replicas: extractPlan.replicas }),
    };
    const plainTrain = await plainFlow(join(this.data, 'train'), extractSettings, o.rescale, {
      ...(cacheUsed ? { cache: cacheUsed } : {}),
      ...(train ? { of: train } : {}),
    });
    const val = await plainFlow(join(this.data, 'val'), extractSettings, o.rescale);
    try {
      this.checkClasses(plainTrain, val);
      this.log(
        `data: ${plainTrain.samples} train / ${val.samples} val images, ${plainTrain.classNames.length} classes; ${plainTrain.workers} decode workers, ` +
          `${plan.replicas} trainer replica${plan.replicas > 1 ? 's' : ''} × ${plan.threadsPerReplica} TensorFlow thread${plan.threadsPerReplica > 1 ? 's' : ''}, ` +
          `extraction ${extractPlan.replicas} × ${extractPlan.threadsPerReplica}`,
      );
      this.clock.mark('setup');
      const trained = imported ? { ...imported, history: [] as EpochLog[] } : await this.trainBase(tf, plan, seedBase!, train!, val);
      this.clock.mark('base');
      // An encoded cache the training flow gave up (over its budget) is not tried again by extraction.
      if (train?.cachePlan.state === 'over-budget' && plainTrain.cachePlan.state === 'write') plainTrain.declineCache(train.cachePlan);
      // With fine-tuning, the frozen base's features are phase 1's: kept apart from the final ones.
      const fineTuning = imported && o.fineTune !== undefined;
      let features = await this.extract(tf, extractPlan, trained, plainTrain, val, fineTuning ? join('features', 'frozen') : 'features');
      this.clock.mark('extract');
      let head = await this.trainHead(tf, features);
      this.clock.mark('head');
      let fineTune: WorkflowResult['fineTune'];
      if (fineTuning) {
        fineTune = await this.fineTune(tf, plan, imported, head.result.model, settings, val);
        this.clock.mark('fine-tune');
        features = await this.extract(tf, extractPlan, trained, plainTrain, val, 'features');
        this.clock.mark('re-extract');
        if (o.retrainHead) {
          // A fresh head on the fine-tuned base's features, in place of the one tuned with it.
          this.log(`retrain-head: a fresh head on the fine-tuned base's features, ${o.headEpochs} epochs`);
          const retrained = await this.trainHead(tf, features, 'retrain-head');
          head.result.model.dispose();
          fineTune = { ...fineTune, frozenHead: head.result.history };
          head = retrained;
          this.clock.mark('retrain-head');
        } else head = { result: head.result, valSet: await readFeatureFile(features.files.val) };
      }
      const cpu = this.sampler.stop();
      const shown = train ?? plainTrain;
      // The report's base curves are the fine-tuning epochs' when there are any (an imported base has no others).
      const history = fineTune?.history ?? trained.history;
      const published = await this.publish(tf, { ...trained, history, head: head.result, valSet: head.valSet, train: shown, features, pool, settings });
      // The extractor, the stacked model and the base share the base's layers: disposing the
      // trainer (or the imported model) frees them all.
      trained.trainer.optimizer?.dispose(); // passed to compile(), so not released by dispose()
      trained.trainer.dispose();
      head.result.model.dispose();
      this.clock.mark('report');
      return this.result({ plan, cpu, train: shown, history: trained.history, features, head: head.result, ...published, ...(fineTune ? { fineTune } : {}) });
    } finally {
      await Promise.all([train?.close(), plainTrain.close(), val.close()]);
    }
  }

  private skip(file: { path: string; reason: string }): void {
    if (this.skipped.has(file.path)) return;
    this.skipped.set(file.path, file.reason);
    this.log(`skipped ${file.path}: ${file.reason}`);
  }

  /** Labels are class indices: val/ must hold the classes of train/ (checked before any training). */
  private checkClasses(train: ImageFlow, val: ImageFlow): void {
    if (JSON.stringify(val.classNames) === JSON.stringify(train.classNames)) return;
    throw new Error(
      `${join(this.data, 'val')} has classes ${JSON.stringify(val.classNames)} but ${join(this.data, 'train')} has ${JSON.stringify(train.classNames)}: ` +
        'validation must use the training classes (add or remove class folders so that both match)',
    );
  }

  /**
   * A class whose every training image was skipped (--on-error skip) has no row to learn from: the
   * head would keep an output that was never trained. Refused by name, with the skipped count.
   */
  private checkEveryClassTrains(train: { labels: Int32Array; classNames: string[] }): void {
    const rows = new Array<number>(train.classNames.length).fill(0);
    for (const label of train.labels) rows[label]!++;
    const empty = train.classNames.filter((_, k) => rows[k] === 0);
    if (empty.length === 0) return;
    const skipped = (name: string) => [...this.skipped.keys()].filter((p) => p.includes(`/train/${name}/`)).length;
    throw new Error(
      `${join(this.data, 'train')}: class${empty.length > 1 ? 'es' : ''} ${empty.map((c) => `'${c}' (${skipped(c)} images skipped)`).join(', ')} ${empty.length > 1 ? 'have' : 'has'} no loadable training image: ` +
        'the head cannot learn a class it never sees (fix or replace its images, or remove its folder from train/ and val/)',
    );
  }

  private async trainBase(tf: Tf, plan: ThreadPlan, base: LayersModel, train: ImageFlow, val: ImageFlow) {
    const { o } = this;
    const [h, w] = o.imageSize;
    const trainer = withClassifier(tf, base, train.classNames.length, o.seed + 1000);
    // Refused by its options before the first step: a plan that does not fit ends in an
    // out-of-memory crash (SIGSEGV, no message) with a partial pixel cache behind it.
    const need = trainingFootprint(trainer, o.batchSize, plan.replicas);
    if (need.bytes > totalmem() / 2) {
      trainer.dispose();
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
      throw new Error(
        `--image-size ${h}x${w} with --batch-size ${o.batchSize}: training the base CNN needs about ${gib(need.bytes)} ` +
          `(${need.parameters.toLocaleString('en-US')} parameters, ${need.activations.toLocaleString('en-US')} activations an image), more than half of this machine's ${gib(totalmem())}; ` +
          'lower --image-size or --batch-size, or bring a pretrained base (--base) and train only the head',
      );
    }
    const history = await trainBase(tf, trainer, train, {
      ...this.engine(plan),
      epochs: o.baseEpochs,
      // A checkpoint after every epoch; `resume` continues a killed run from it.
      checkpointDir: join(this.out, 'checkpoints', 'base'),
      resume: o.resume,
      ...(o.tensorboard ? { tensorBoardDir: resolve(o.tensorboard) } : {}),
      ...(o.validateBase ? { validation: val } : {}),
      ...this.controls('base'),
      onEpochEnd: (e, l) =>
        this.log(
          `base epoch ${e + 1}: loss ${l.loss.toFixed(4)} acc ${l.acc.toFixed(4)}${l.valLoss !== undefined ? ` val_loss ${l.valLoss.toFixed(4)} val_acc ${l.valAcc!.toFixed(4)}` : ''} (${l.imagesPerSecond.toFixed(0)} images/s)`,
        ),
      ...this.signal,
      ...(this.hooks.onBaseBatch ? { onBatch: this.hooks.onBaseBatch } : {}),
    });
    const featureLayer = o.featureLayer ?? FEATURE_LAYER;
    return { extractor: featureExtractor(tf, base, featureLayer, o.pooling), featureLayer, pooling: o.pooling, trainer, history };
  }

  private engine(plan: ThreadPlan) {
    return {
      replicas: plan.replicas,
      threadsPerReplica: plan.threadsPerReplica,
      ...(this.o.engine ? { engine: this.o.engine } : {}),
      ...(this.o.precision ? { precision: this.o.precision } : {}),
    };
  }

  private async extract(
    tf: Tf,
    plan: ThreadPlan,
    { extractor, featureLayer, pooling }: { extractor: LayersModel; featureLayer: string; pooling: Pooling },
    plainTrain: ImageFlow,
    val: ImageFlow,
    dir: string,
  ) {
    const files = { train: join(this.out, dir, 'train.arrow'), val: join(this.out, dir, 'val.arrow') };
    // Resumed runs also resume an interrupted extraction from its journal.
    const options = (split: 'train' | 'val') => ({
      featureLayer,
      pooling,
      resume: this.o.resume,
      ...this.signal,
      ...(this.hooks.onExtractBatch ? { onBatch: (p: ExtractProgress) => this.hooks.onExtractBatch!(split, p) } : {}),
    });
    // One session extracts both splits: its graph is optimised and its memory touched once.
    const extraction = openExtraction(tf, extractor, this.engine(plan));
    let train: ExtractResult;
    let valResult: ExtractResult;
    try {
      train = await extraction.extract(plainTrain, files.train, options('train'));
      valResult = await extraction.extract(val, files.val, options('val'));
    } finally {
      await extraction.close();
    }
    for (const r of [train, valResult]) if (r.discardedJournal) this.log(`warning: ${r.discardedJournal}; extracted ${r.path} from the start`);
    if (train.fallback) this.log(`warning: extraction ran on the eager engine: ${train.fallback}`);
    this.log(`features: ${train.rows} + ${valResult.rows} rows × ${train.dimension} → ${join(this.out, dir)}`);
    return { files, train, val: valResult };
  }

  /**
   * Phase 2 of Keras's transfer-learning recipe: the imported base (all its layers with weights, or
   * the top N; BatchNormalization frozen, in inference mode, unless bnTrain) trains with the phase-1 head on top,
   * at a low learning rate, on augmented images. The base's and the head's layers are trained in
   * place: the extractor and the head model then hold the fine-tuned weights.
   */
  private async fineTune(tf: Tf, plan: ThreadPlan, imported: ImportedBase, head: LayersModel, settings: ImageSettings, val: ImageFlow) {
    const { o } = this;
    imported.trainer.trainable = true; // importBase froze it whole; the layers are chosen below
    const layers = freezeForFineTuning(imported.trainer, o.fineTune!, { bnTrain: o.bnTrain });
    const stacked = stackModels(tf, imported.extractor, head, featureLayerOf(imported.extractor));
    this.log(
      `fine-tune: ${layers.length} of ${o.base}'s layers with weights train (BatchNormalization ${o.bnTrain ? 'training on batch statistics' : 'frozen'}), with the head, for ${o.fineTuneEpochs} epochs at learning rate ${o.fineTuneLr}`,
    );
    const train = await trainingFlow(join(this.data, 'train'), settings, o.augment);
    try {
      const history = await trainBase(tf, stacked, train, {
        ...this.engine(plan),
        epochs: o.fineTuneEpochs,
        learningRate: o.fineTuneLr,
        checkpointDir: join(this.out, 'checkpoints', 'fine-tune'),
        resume: o.resume,
        ...(o.validateBase ? { validation: val } : {}),
        ...this.controls('fine-tune'),
        onEpochEnd: (e, l) =>
          this.log(
            `fine-tune epoch ${e + 1}: loss ${l.loss.toFixed(4)} acc ${l.acc.toFixed(4)}${l.valLoss !== undefined ? ` val_loss ${l.valLoss.toFixed(4)} val_acc ${l.valAcc!.toFixed(4)}` : ''} (${l.imagesPerSecond.toFixed(0)} images/s, ${l.engine} engine)`,
          ),
        ...this.signal,
        ...(this.hooks.onBaseBatch ? { onBatch: this.hooks.onBaseBatch } : {}),
      });
      return { history, layers };
    } finally {
      stacked.optimizer?.dispose(); // passed to compile(), so not released with the layers
      await train.close();
    }
  }

  /**
   * The training controls of a phase: the run's schedule, warm-up, plateau and best-epoch options,
   * and a CSV log of its epochs in <out>/<phase>-log.csv (Keras's CSVLogger).
   */
  private controls(phase: 'base' | 'fine-tune' | 'head' | 'retrain-head') {
    const { o } = this;
    const watched = phase !== 'head' && phase !== 'retrain-head' && !o.validateBase ? watchedValidation(resolveControls(o), o.keepBest) : [];
    if (watched.length > 0) {
      throw new Error(
        `--keep-best and --reduce-on-plateau watch ${watched.map((w) => w.monitor).join(' and ')}, a validation score the base has only without --no-validate-base`,
      );
    }
    return { ...controlsOf(o), keepBest: o.keepBest, csvLog: join(this.out, `${phase}-log.csv`) };
  }

  /** The head reads the features back from disk: the files are the interface between the stages. */
  private async trainHead(tf: Tf, features: Features, phase: 'head' | 'retrain-head' = 'head') {
    const valSet = await readFeatureFile(features.files.val);
    const trainSet = await readFeatureFile(features.files.train);
    this.checkEveryClassTrains(trainSet);
    const result = await trainHead(tf, trainSet, valSet, {
      epochs: this.o.headEpochs,
      seed: this.o.seed,
      ...this.controls(phase),
      ...this.signal,
      ...(this.hooks.onHeadEpoch ? { onEpochEnd: (_: number, l: HeadEpochProgress) => this.hooks.onHeadEpoch!(l) } : {}),
    });
    this.log(`head: validation accuracy ${result.valAccuracy.toFixed(4)}`);
    return { result, valSet };
  }

  /** Evaluation, history, the stacked model (for `featherstack predict`) and the HTML report. */
  private async publish(
    tf: Tf,
    p: {
      extractor: LayersModel;
      featureLayer: string;
      head: HeadResult;
      valSet: Awaited<ReturnType<typeof readFeatureFile>>;
      train: ImageFlow;
      history: EpochLog[];
      features: Features;
      pool: ImagePool;
      settings: ImageSettings;
    },
  ) {
    const { o, out } = this;
    const evaluation = await evaluateHead(tf, p.head.model, p.valSet, { topK: [1, 3] });
    const evaluationFile = join(out, 'evaluation.json');
    await writeFileAtomic(evaluationFile, `${JSON.stringify(evaluation, null, 2)}\n`);
    await writeFileAtomic(join(out, 'history.json'), `${JSON.stringify({ base: p.history, head: p.head.history }, null, 2)}\n`);
    this.log(`evaluation: macro F1 ${evaluation.macro.f1.toFixed(4)}, top-3 ${evaluation.topK['3']?.toFixed(4)} → ${evaluationFile}`);
    const modelDir = join(out, 'model');
    const [h, w] = p.settings.imageSize;
    await saveStacked(stackModels(tf, p.extractor, p.head.model, featureLayerOf(p.extractor)), modelDir, {
      format: 1,
      classNames: p.train.classNames,
      inputShape: [h, w, p.train.image.channels],
      colorMode: p.settings.colorMode,
      interpolation: p.train.image.interpolation,
      rescale: o.rescale,
      featureLayer: p.featureLayer,
      pooling: p.features.train.pooling,
      preprocess: o.preprocess,
      ...(o.base ? { base: resolve(o.base) } : {}),
    });
    const run = { o, data: this.data, out, clock: this.clock, plan: this.plan, skipped: this.skipped };
    const { report, tensorflow, stages } = await writeRunReport(run, evaluation, p);
    return { evaluation, evaluationFile, modelDir, report, tensorflow, stages };
  }

  private result(r: {
    plan: ThreadPlan;
    cpu: CpuReport;
    train: ImageFlow;
    history: EpochLog[];
    features: Features;
    head: HeadResult;
    evaluation: Evaluation;
    evaluationFile: string;
    modelDir: string;
    report: WrittenReport;
    tensorflow: ReturnType<typeof tensorflowReport>;
    stages: Stage[];
    fineTune?: WorkflowResult['fineTune'];
  }): WorkflowResult {
    const { clock } = this;
    const [base, extract, head] = r.stages;
    const tuned = r.fineTune !== undefined;
    const end = lastStage(clock);
    return {
      // Fine-tuned: the accuracy of the final stacked model, on the features its base extracts now.
      val_accuracy: tuned ? r.evaluation.accuracy : r.head.valAccuracy,
      seconds: {
        total: clock.seconds('start', end),
        setup: clock.seconds('start', 'setup'),
        tensorflow_load: clock.seconds('start', 'tensorflow'),
        base_train: clock.seconds('setup', 'base'),
        extract: clock.seconds('base', 'extract'),
        head_train: clock.seconds('extract', 'head'),
        ...(tuned ? { fine_tune: clock.seconds('head', 'fine-tune'), re_extract: clock.seconds('fine-tune', 're-extract') } : {}),
        ...(clock.has('retrain-head') ? { retrain_head: clock.seconds('re-extract', 'retrain-head') } : {}),
        report: clock.seconds(end, 'report'),
      },
      base: r.history,
      head: r.head.history,
      ...(r.fineTune ? { fineTune: r.fineTune } : {}),
      features: {
        train: r.features.files.train,
        val: r.features.files.val,
        dimension: r.features.train.dimension,
        rows: { train: r.features.train.rows, val: r.features.val.rows },
      },
      model: r.modelDir,
      evaluation: { file: r.evaluationFile, accuracy: r.evaluation.accuracy, topK: r.evaluation.topK, macroF1: r.evaluation.macro.f1 },
      throughput: {
        base_images_per_second: base!.seconds > 0 ? base!.items / base!.seconds : 0,
        extract_images_per_second: extract!.items / extract!.seconds,
        head_rows_per_second: head!.items / head!.seconds,
      },
      report: r.report,
      tensorflow: r.tensorflow,
      workers: r.train.workers,
      plan: r.plan,
      cpu: r.cpu,
      skipped: [...this.skipped].map(([path, reason]) => ({ path, reason })),
      data: { train: r.train.packDir ? 'pack' : 'directory', cache: describeCachePlan(r.train.cachePlan) },
    };
  }
}
