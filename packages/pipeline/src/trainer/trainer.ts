/**
 * Base training as a service: a typed API (`TrainerApi`) that owns tfjs-node, run either in a
 * dedicated long-lived worker thread driven through comlink (`startTrainer`) — the caller's event
 * loop stays free while TensorFlow works — or in process (`inProcessTrainer`). Jobs are plain data
 * (directories and options), progress comes back per epoch, and `cancel()` stops a running job.
 */
import { mkdir } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { controlsOf, FEATURE_LAYER, type TrainingControls } from '@featherstack/common';
import type { AugmentOptions, ColorMode } from '@featherstack/images';
import { loadTensorFlow, tensorflowReport } from '@featherstack/tensorflow';
import { proxy, type Remote, wrap } from 'comlink';
import { type ImageSettings, plainFlow, trainingFlow } from '../flows.js';
import { inputImageSettings } from '../imported.js';
import { engineOptions, RUN_DEFAULTS } from '../options.js';
import { nodeEndpoint } from './comlink-node.js';
import {
  checkCut,
  createBaseModel,
  defaultFeatureLayer,
  type EngineKind,
  type EpochLog,
  type FineTune,
  featureExtractor,
  freezeForFineTuning,
  loadBaseModel,
  type Pooling,
  type Precision,
  recordCut,
  trainBase,
  withClassifier,
} from '@featherstack/core';

/** One base-training job: everything is plain data, so it crosses the thread boundary. */
export interface BaseJob extends TrainingControls {
  /** flow_from_directory training data. */
  train: string;
  /** Optional non-augmented validation data. */
  validation?: string;
  targetSize: [number, number];
  colorMode?: ColorMode;
  batchSize?: number;
  seed?: number;
  epochs: number;
  learningRate?: number;
  augment?: AugmentOptions;
  workers?: number;
  /** Conv filters and dense units of the seed CNN (defaults: [32, 64] and [128, 64]). */
  filters?: number[];
  dense?: number[];
  patience?: number;
  /** End with the epoch best by bestMonitor (see trainBase). */
  keepBest?: boolean;
  checkpointDir?: string;
  resume?: boolean;
  /**
   * Where `extract` will cut the saved base (default the layer 'features', no pooling): checked
   * before training, recorded in the saved model.json.
   */
  featureLayer?: string;
  pooling?: Pooling;
  /** Where the trained base (without its temporary classifier) is saved, tfjs layers format. */
  saveTo: string;
  /**
   * A pretrained base to fine-tune instead of the seed CNN (.keras, .h5 or tfjs model.json): its input
   * sets the image size and channels, its BatchNormalizations stay frozen, and `fineTune` says which
   * layers train ('all', the default, or the top N with weights).
   */
  model?: string;
  fineTune?: FineTune;
  /** With `model`: its BatchNormalizations above the lowest training layer train too (see freezeForFineTuning). */
  bnTrain?: boolean;
  /** Data-parallel replicas, TensorFlow threads per replica, engine and precision (see trainBase). */
  replicas?: number;
  tfThreads?: number;
  engine?: EngineKind;
  precision?: Precision;
}

export interface TrainerApi {
  /** Trains a base; `onEpoch` is called after every epoch. Resolves with the history and the saved model's model.json. */
  /** `fineTuned`: the layers of a pretrained base (job.model) that trained. */
  trainBase(job: BaseJob, onEpoch?: (log: EpochLog) => void): Promise<{ history: EpochLog[]; model: string; fineTuned?: string[] }>;
  /** Cancels the running job (it rejects with the reason). */
  cancel(reason?: string): void;
  /** The TensorFlow this trainer runs on. */
  tensorflow(): ReturnType<typeof tensorflowReport>;
}

/** The trainer itself, in the current thread. */
export function inProcessTrainer(options: { tfThreads?: number } = {}): TrainerApi {
  let controller: AbortController | null = null;
  const threads = options.tfThreads !== undefined ? { intraOpThreads: options.tfThreads } : {};
  return {
    async trainBase(job, onEpoch) {
      const tf = loadTensorFlow(threads);
      controller = new AbortController();
      // The run's defaults and flows (flows.ts), as the workflow and the stage commands use them.
      const settings: ImageSettings = {
        imageSize: job.targetSize,
        colorMode: job.colorMode ?? RUN_DEFAULTS.colorMode,
        batchSize: job.batchSize ?? RUN_DEFAULTS.batchSize,
        seed: job.seed ?? RUN_DEFAULTS.seed,
        ...(job.workers ? { workers: job.workers } : {}),
      };
      const augment = job.augment ?? RUN_DEFAULTS.augment;
      // A pretrained base decides the image size and channels (given ones must agree with it).
      const pretrained = job.model ? await loadBaseModel(tf, job.model) : undefined;
      if (pretrained) {
        const input = inputImageSettings(pretrained, job.model!, { colorMode: job.colorMode });
        Object.assign(settings, { imageSize: input.targetSize, colorMode: input.colorMode });
      }
      const train = await trainingFlow(job.train, settings, augment);
      const validation = job.validation ? await plainFlow(job.validation, settings, augment.rescale ?? 1) : undefined;
      const base =
        pretrained ??
        createBaseModel(tf, {
          inputShape: [job.targetSize[0], job.targetSize[1], train.image.channels],
          seed: settings.seed,
          ...(job.filters ? { filters: job.filters } : {}),
          ...(job.dense ? { dense: job.dense } : {}),
        });
      const cut = {
        featureLayer: job.featureLayer ?? (pretrained ? defaultFeatureLayer(pretrained).layer : FEATURE_LAYER),
        pooling: job.pooling ?? RUN_DEFAULTS.pooling,
      };
      const fineTuned = pretrained ? freezeForFineTuning(pretrained, job.fineTune ?? 'all', { bnTrain: job.bnTrain ?? false }) : undefined;
      // A pretrained base trains through a classifier on its cut, as extract will read it.
      const top = pretrained ? featureExtractor(tf, pretrained, cut.featureLayer, cut.pooling) : base;
      const trainer = withClassifier(tf, top, train.classNames.length, settings.seed + 1000);
      try {
        checkCut(base, cut.featureLayer, cut.pooling);
        const history = await trainBase(tf, trainer, train, {
          epochs: job.epochs,
          signal: controller.signal,
          // Fine-tuning a pretrained base starts where Keras's guide does: Adam at 1e-5.
          ...(job.learningRate ? { learningRate: job.learningRate } : pretrained ? { learningRate: 1e-5 } : {}),
          ...(validation ? { validation } : {}),
          ...(job.patience !== undefined ? { patience: job.patience } : {}),
          ...controlsOf(job),
          ...(job.keepBest ? { keepBest: true } : {}),
          ...(job.checkpointDir ? { checkpointDir: job.checkpointDir, resume: job.resume ?? false } : {}),
          ...engineOptions(job),
          onEpochEnd: (_, log) => onEpoch?.(log),
        });
        await mkdir(job.saveTo, { recursive: true });
        recordCut(base, cut);
        await base.save(`file://${job.saveTo}`);
        return { history, model: `${job.saveTo}/model.json`, ...(fineTuned ? { fineTuned } : {}) };
      } finally {
        // The optimizer passed to compile() outlives model.dispose() in tfjs: a long-lived trainer
        // running job after job must release it too.
        trainer.optimizer?.dispose();
        trainer.dispose();
        controller = null;
        await Promise.all([train.close(), validation?.close()]);
      }
    },
    cancel(reason = 'cancelled') {
      controller?.abort(new Error(reason));
    },
    tensorflow() {
      return tensorflowReport(threads);
    },
  };
}

/**
 * Starts a trainer in a dedicated worker thread. Call `close()` when done: it ends the worker.
 *
 * @example
 * const trainer = startTrainer();
 * const { history } = await trainer.api.trainBase(job, proxy((log) => console.log(log)));
 * await trainer.close();
 */
export function startTrainer(options: { tfThreads?: number } = {}): { api: Remote<TrainerApi>; close(): Promise<void> } {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: options });
  const api = wrap<TrainerApi>(nodeEndpoint(worker as never));
  return {
    api,
    async close() {
      await worker.terminate();
    },
  };
}

/** Wraps a progress callback so it can be passed to a worker trainer. */
export function progress(onEpoch: (log: EpochLog) => void): (log: EpochLog) => void {
  return proxy(onEpoch);
}
