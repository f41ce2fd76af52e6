/** The head: a dense classifier trained on feature vectors. */
import { totalmem } from 'node:os';
import { ENGINE_KINDS, type EngineKind } from '@featherstack/core';
import { BestEpoch, CsvLog, classWeights, DEFAULT_SEED, epochOrder, LearningRates, positiveInt, type TrainingControls } from '@featherstack/common';
import { type LayersModel, OPTIMIZER_CHOICES, type OptimizerKind, OPTIMIZERS, type Tensor, type Tf } from '@featherstack/tensorflow';
import { FeatureFileError, HeadOptionError, invalidOption } from './errors.js';
import { type HeadEngine, openHeadEngine, type Rows } from './engine.js';
import { commonBaseModel, type FeatureSet } from './features.js';
import type { FeatureStream } from './stream.js';

/** A head epoch's scores with its progress: epochs in all, seconds and training rows of the epoch. */
export type HeadEpochProgress = HeadResult['history'][number] & { epochs: number; seconds: number; rows: number };

/**
 * The training controls (schedule, warm-up, reduce-on-plateau, CSV log, bestMonitor) are common's,
 * shared with base training.
 */
export interface HeadOptions extends TrainingControls {
  /** Hidden dense layers (ReLU). Default [128] — the seed's head. */
  units?: number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Stops training (checked between batches); trainHead then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after each epoch with its scores (for progress bars and logs). */
  onEpochEnd?: (epoch: number, log: HeadEpochProgress) => void;
  /** 'adam' (default), 'sgd', 'momentum' (0.9) or 'rmsprop'. */
  optimizer?: OptimizerKind;
  /**
   * 'graph' (default for dense heads): the head compiled into one TensorFlow session, a step one
   * native call; 'eager': tfjs ops (recurrent heads always train so).
   */
  engine?: EngineKind;
  /** Intra-op threads of the graph engine's session. Default 1 (a head's ops are small). */
  threads?: number;
  seed?: number;
  /**
   * Early stopping (Keras's EarlyStopping on val_loss): stop after this many epochs without an
   * improvement of more than `minDelta`. Default: off.
   */
  patience?: number;
  minDelta?: number;
  /** With patience: end with the weights of the best epoch, not the last. Default true. */
  restoreBestWeights?: boolean;
  /** End with the weights of the epoch best by `bestMonitor` (default val_loss), with or without patience. */
  keepBest?: boolean;
  /**
   * A recurrent head for sequence features: each row is read as `timesteps` steps of
   * dimension / timesteps values and fed to a GRU or LSTM of `units` before the dense layers.
   */
  recurrent?: { kind: 'gru' | 'lstm'; units: number; timesteps?: number };
}

export interface HeadResult {
  model: LayersModel;
  history: { epoch: number; loss: number; acc: number; valLoss: number; valAcc: number; lr: number }[];
  valAccuracy: number;
  seconds: number;
  /** Epoch (0-based) with the lowest validation loss, and whether early stopping ended training. */
  bestEpoch: number;
  stoppedEarly: boolean;
  /** The engine that trained the head, and why not the graph when the compiler refused it. */
  engine: EngineKind;
  fallback?: string;
}

/**
 * Copies of the head's parameters alive at once while training: the layers' variables, the fused
 * step's weights, Adam's two moments, a gradient, the step's temporaries and the initial and best
 * weights (a 4M×128 head was measured at ~9× its parameter bytes).
 */
const PARAMETER_COPIES = 9;

/**
 * Refuses, before anything is allocated, a head whose parameters and features would not fit in
 * half of this machine's memory (the same budget as an image flow's batches), naming the feature
 * file and its dimension: a 4,000,000-dimensional feature file otherwise builds a 4M×128 dense
 * layer and dies of a raw TensorFlow out-of-memory error.
 */
function assertHeadFits(path: string, dimension: number, units: number[], classes: number, trainRows: number, valRows: number, recurrentUnits?: number) {
  const widths = [recurrentUnits ?? dimension, ...units, classes];
  let parameters = recurrentUnits ? 4 * recurrentUnits * (dimension + recurrentUnits + 1) : 0;
  for (let i = 1; i < widths.length; i++) parameters += (widths[i - 1]! + 1) * widths[i]!;
  // Features in memory: the file's copy, the tensor and the epoch's shuffled gather.
  const bytes = 4 * (parameters * PARAMETER_COPIES + 3 * (trainRows + valRows) * dimension);
  const budget = totalmem() / 2;
  if (bytes <= budget) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  throw new FeatureFileError(
    path,
    `has ${dimension}-dimensional features: a head of ${widths.join('→')} units (${parameters.toLocaleString('en-US')} parameters) needs about ${gib(bytes)} to train, more than half of this machine's ${gib(totalmem())}; pool or reduce the features (extract with pooling 'avg', or a PCA transform) or use fewer options.units`,
  );
}

/**
 * Trains the head on `train` and reports accuracy on `val` after every epoch.
 *
 * @example
 * const { valAccuracy } = await trainHead(tf, await readFeatureFile(a), await readFeatureFile(b));
 */
export async function trainHead(tf: Tf, train: FeatureSet | FeatureStream, val: FeatureSet, options: HeadOptions = {}): Promise<HeadResult> {
  const stream = 'kind' in train ? train : null;
  const started = performance.now();
  const units = options.units ?? [128];
  if (!Array.isArray(units) || units.some((u) => !Number.isInteger(u) || u < 1)) throw invalidOption('units', 'an array of positive integers', units);
  const epochs = positiveInt('epochs', options.epochs, 10, HeadOptionError);
  const batchSize = positiveInt('batchSize', options.batchSize, 32, HeadOptionError);
  const lr = options.learningRate ?? 1e-3;
  if (!(lr > 0)) throw invalidOption('learningRate', 'a positive number', lr);
  const rates = new LearningRates(lr, epochs, options, HeadOptionError);
  const bestByMonitor = new BestEpoch(rates.controls.bestMonitor);
  const trainPath = stream ? stream.files.join(', ') : (train as FeatureSet).path;
  if (val.dimension !== train.dimension) {
    throw new FeatureFileError(val.path, `has ${val.dimension}-dimensional features but ${trainPath} has ${train.dimension}`);
  }
  // Labels are class indices: the same index must mean the same class in both files, or the
  // validation scores are computed against shifted labels (and look merely poor).
  if (train.classNames.length > 0 && JSON.stringify(val.classNames) !== JSON.stringify(train.classNames)) {
    throw new FeatureFileError(
      val.path,
      `has classes ${JSON.stringify(val.classNames)} but ${trainPath} has ${JSON.stringify(train.classNames)}: validation must use the training classes, in the training order`,
    );
  }
  commonBaseModel([{ path: trainPath, baseModel: train.baseModel }, val]);
  let maxLabel = -1;
  for (const set of stream ? [val] : [train as FeatureSet, val]) for (const label of set.labels) if (label > maxLabel) maxLabel = label;
  const numClasses = Math.max(train.classNames.length, maxLabel + 1);
  let seed = options.seed ?? DEFAULT_SEED;
  // Timesteps default to the sequence shape the feature file declares.
  const declared = stream ? undefined : (train as FeatureSet).sequence?.[0];
  const recurrent = options.recurrent ? { ...options.recurrent, timesteps: options.recurrent.timesteps ?? declared ?? 0 } : undefined;
  if (recurrent !== undefined) {
    const ok =
      typeof recurrent === 'object' && (recurrent.kind === 'gru' || recurrent.kind === 'lstm') && Number.isInteger(recurrent.units) && recurrent.units > 0;
    if (!ok || !Number.isInteger(recurrent.timesteps) || recurrent.timesteps < 1 || train.dimension % recurrent.timesteps !== 0) {
      throw invalidOption('recurrent', `{ kind: 'gru' | 'lstm', units > 0, timesteps dividing the feature dimension ${train.dimension} }`, recurrent);
    }
  }
  // Every option is checked before anything is built.
  const kind = options.optimizer ?? 'adam';
  if (!(OPTIMIZERS as readonly string[]).includes(kind)) throw invalidOption('optimizer', OPTIMIZER_CHOICES, kind);
  if (options.engine !== undefined && !(ENGINE_KINDS as readonly string[]).includes(options.engine))
    throw invalidOption('engine', "'graph' or 'eager'", options.engine);
  if (recurrent && options.engine === 'graph')
    throw invalidOption('engine', "'eager' with a recurrent head (the graph compiler has no GRU or LSTM)", options.engine);
  const memory = stream ? null : (train as FeatureSet);
  // Keras's class_weight, by class index: each row's loss is weighed by its class's weight.
  let rowWeights: Float32Array | null = null;
  if (options.classWeight !== undefined) {
    if (stream && options.classWeight === 'balanced')
      throw invalidOption('classWeight', "weights by class with a streamed training set ('balanced' needs the class counts)", 'balanced');
    const names = train.classNames.length === numClasses ? train.classNames : Array.from({ length: numClasses }, (_, i) => String(i));
    rowWeights = classWeights(options.classWeight, names, memory ? memory.labels : [], HeadOptionError);
  }
  const patience = options.patience;
  if (patience !== undefined && (!Number.isInteger(patience) || patience < 0)) throw invalidOption('patience', 'a non-negative integer', patience);
  const minDelta = options.minDelta ?? 0;
  if (typeof minDelta !== 'number' || !(minDelta >= 0)) throw invalidOption('minDelta', 'a number ≥ 0', minDelta);
  assertHeadFits(trainPath, train.dimension, units, numClasses, stream ? 0 : (train as FeatureSet).rows, val.rows, recurrent?.units);
  const model = tf.sequential({ name: 'head' });
  if (recurrent) {
    const step = train.dimension / recurrent.timesteps;
    model.add(tf.layers.reshape({ targetShape: [recurrent.timesteps, step], inputShape: [train.dimension] }));
    const config = {
      units: recurrent.units,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: seed++ }),
    };
    model.add(recurrent.kind === 'gru' ? tf.layers.gru(config) : tf.layers.lstm(config));
  }
  units.forEach((u, i) => {
    model.add(
      tf.layers.dense({
        units: u,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
        ...(i === 0 && !recurrent ? { inputShape: [train.dimension] } : {}),
      }),
    );
  });
  model.add(
    tf.layers.dense({
      units: numClasses,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      ...(units.length === 0 && !recurrent ? { inputShape: [train.dimension] } : {}),
    }),
  );
  let engine: HeadEngine;
  try {
    engine = await openHeadEngine(tf, model, {
      engine: recurrent ? 'eager' : options.engine,
      optimizer: kind,
      learningRate: lr,
      classes: numClasses,
      dimension: train.dimension,
      weighted: rowWeights !== null,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      seed,
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  const history: HeadResult['history'] = [];
  const weightsOf = (labels: Int32Array, rows: number) => {
    if (!rowWeights) return undefined;
    const out = new Float32Array(rows);
    for (let i = 0; i < rows; i++) out[i] = rowWeights[labels[i]!]!;
    return out;
  };
  const csv = options.csvLog ? new CsvLog(options.csvLog, 0) : null;
  let kept: Float32Array[] | null = null;
  const restoreBest = options.restoreBestWeights ?? true;
  let best = { loss: Infinity, epoch: -1, weights: null as Float32Array[] | null };
  let stoppedEarly = false;
  const d = train.dimension;
  const batch = { rows: 0, features: new Float32Array(batchSize * d), labels: new Int32Array(batchSize) };
  try {
    for (let e = 0; e < epochs; e++) {
      const epochStarted = performance.now();
      const rate = rates.rateFor(e);
      engine.setLearningRate(rate);
      let epochRows = 0;
      const step = async (b: Rows) => {
        if (options.signal?.aborted) throw options.signal.reason ?? new Error('head training aborted');
        epochRows += b.rows;
        await engine.step(b, weightsOf(b.labels, b.rows));
      };
      let steps = 0;
      if (stream) {
        // Files read batch by batch through the seeded shuffle buffer (stream.ts).
        for await (const b of stream.batches(e)) {
          await step(b);
          if (++steps % 256 === 0) await new Promise((r) => setImmediate(r));
        }
      } else {
        // A seeded permutation per epoch (tfjs's shuffle draws from Math.random), gathered batch by batch.
        const rowsN = memory!.rows;
        const permutation = epochOrder(rowsN, seed, e);
        for (let start = 0; start < rowsN; start += batchSize) {
          batch.rows = Math.min(batchSize, rowsN - start);
          for (let i = 0; i < batch.rows; i++) {
            const row = permutation[start + i]!;
            batch.features.set(memory!.features.subarray(row * d, (row + 1) * d), i * d);
            batch.labels[i] = memory!.labels[row]!;
          }
          await step(batch);
          if (++steps % 256 === 0) await new Promise((r) => setImmediate(r)); // keep the event loop responsive
        }
      }
      // End-of-epoch loss and accuracy over the whole training set (Keras reports the running mean
      // over the epoch). Streams have no training set in memory to score: theirs are NaN.
      const [loss, acc] = memory ? await engine.scores(memory) : [Number.NaN, Number.NaN];
      const [valLoss, valAcc] = await engine.scores(val);
      // A loss that went non-finite stays so: stop, rather than finish with meaningless scores.
      for (const [name, value] of [
        ['training loss', loss],
        ['validation loss', valLoss],
      ] as const) {
        if (!Number.isFinite(value) && !(name === 'training loss' && !memory)) {
          throw new Error(
            `head training diverged at epoch ${e + 1}: the ${name} is ${value} (lower options.learningRate, now ${rate}, or check the features for extreme values)`,
          );
        }
      }
      history.push({ epoch: e, loss, acc, valLoss, valAcc, lr: rate });
      rates.endEpoch(history[e]!, rate);
      csv?.write(e, history[e]!, rate);
      if (options.keepBest && bestByMonitor.offer(e, history[e]!)) kept = await engine.weights();
      options.onEpochEnd?.(e, { ...history[e]!, epochs, seconds: (performance.now() - epochStarted) / 1000, rows: epochRows });
      if (valLoss < best.loss - minDelta) {
        best = { loss: valLoss, epoch: e, weights: patience !== undefined && restoreBest ? await engine.weights() : null };
      } else if (patience !== undefined && e - best.epoch >= patience) {
        stoppedEarly = true;
        break;
      }
    }
    if (stoppedEarly && best.weights) await engine.setWeights(best.weights);
    if (kept && bestByMonitor.epoch !== history.length - 1) await engine.setWeights(kept);
    await engine.close();
  } catch (error) {
    // Aborted or failed: nothing is returned, so nothing may stay allocated.
    await engine.close().catch(() => {});
    model.dispose();
    throw error;
  }
  // Training is over and the engine's optimizer state is gone. The returned model predicts and
  // evaluates; compile it again to train on.
  const vx = tf.tensor2d(val.features, [val.rows, val.dimension]);
  const predicted = tf.tidy(() => (model.predict(vx) as Tensor).argMax(-1));
  const predictions = await predicted.data();
  predicted.dispose();
  vx.dispose();
  let correct = 0;
  for (let i = 0; i < val.rows; i++) if (predictions[i] === val.labels[i]) correct++;
  return {
    model,
    history,
    valAccuracy: correct / val.rows,
    seconds: (performance.now() - started) / 1000,
    bestEpoch: best.epoch,
    stoppedEarly,
    engine: engine.kind,
    ...(engine.fallback ? { fallback: engine.fallback } : {}),
  };
}
