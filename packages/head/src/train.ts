/** The head: a dense classifier trained on feature vectors. */
import { totalmem } from 'node:os';
import { BestEpoch, CsvLog, classWeights, epochOrder, LearningRates, positiveInt, type TrainingControls } from '@featherstack/common';
import {
  eagerOptimizer,
  type LayersModel,
  OPTIMIZER_CHOICES,
  type OptimizerKind,
  OPTIMIZERS,
  setOptimizerLearningRate,
  type Tensor,
  type Tf,
} from '@featherstack/tensorflow';
import { FeatureFileError, HeadOptionError, invalidOption } from './errors.js';
import { denseStepper } from './dense.js';
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
  /** 'adam' (default: trained with the fused dense step), 'sgd', 'momentum' (0.9) or 'rmsprop' (through tfjs layers). */
  optimizer?: OptimizerKind;
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
  let seed = options.seed ?? 7;
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
  const kind = options.optimizer ?? 'adam';
  if (!(OPTIMIZERS as readonly string[]).includes(kind)) throw invalidOption('optimizer', OPTIMIZER_CHOICES, kind);
  model.compile({ optimizer: eagerOptimizer(tf, kind, lr), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const memory = stream ? null : (train as FeatureSet);
  const xs = memory ? tf.tensor2d(memory.features, [memory.rows, memory.dimension]) : null;
  const yOneHot = memory ? tf.tidy(() => tf.oneHot(tf.tensor1d(memory.labels, 'int32'), numClasses).toFloat()) : null;
  const vx = tf.tensor2d(val.features, [val.rows, val.dimension]);
  const vy = tf.tidy(() => tf.oneHot(tf.tensor1d(val.labels, 'int32'), numClasses).toFloat());
  const history: HeadResult['history'] = [];
  // Dense heads train with the fused step (dense.ts): the same mathematics as model.fit, a fraction
  // of the kernels. Recurrent heads train through tfjs's layers.
  const fused = !recurrent && kind === 'adam';
  const initial = fused ? model.getWeights().map((w) => w.clone()) : []; // getWeights() hands out the variables themselves
  // Keras's class_weight, by class index: the fused step weighs each row's gradient (tfjs's
  // trainOnBatch, behind the other optimizers and recurrent heads, takes no weights).
  let rowWeights: Float32Array | null = null;
  if (options.classWeight !== undefined) {
    if (!fused) throw invalidOption('classWeight', "used with a dense head and the 'adam' optimizer (the fused step)", options.classWeight);
    if (stream && options.classWeight === 'balanced')
      throw invalidOption('classWeight', "weights by class with a streamed training set ('balanced' needs the class counts)", 'balanced');
    const names = train.classNames.length === numClasses ? train.classNames : Array.from({ length: numClasses }, (_, i) => String(i));
    rowWeights = classWeights(options.classWeight, names, memory ? memory.labels : [], HeadOptionError);
  }
  const weightOf = (labels: ArrayLike<number>) => (rowWeights ? tf.tensor1d(Float32Array.from(labels, (l) => rowWeights![l]!)) : undefined);
  const stepOptions = { learningRate: lr }; // read at every step: the schedule changes it between epochs
  const stepper = fused ? denseStepper(tf, initial, stepOptions) : null;
  const csv = options.csvLog ? new CsvLog(options.csvLog, 0) : null;
  let kept: Tensor[] | null = null;
  const patience = options.patience;
  if (patience !== undefined && (!Number.isInteger(patience) || patience < 0)) throw invalidOption('patience', 'a non-negative integer', patience);
  const minDelta = options.minDelta ?? 0;
  if (typeof minDelta !== 'number' || !(minDelta >= 0)) throw invalidOption('minDelta', 'a number ≥ 0', minDelta);
  const restoreBest = options.restoreBestWeights ?? true;
  let best = { loss: Infinity, epoch: -1, weights: null as Tensor[] | null };
  let stoppedEarly = false;
  try {
    for (let e = 0; e < epochs; e++) {
      const epochStarted = performance.now();
      const rate = rates.rateFor(e);
      if (stepper) stepOptions.learningRate = rate;
      else setOptimizerLearningRate(model.optimizer, rate);
      let epochRows = 0;
      const step = async (x: Tensor, y: Tensor, w?: Tensor) => {
        epochRows += x.shape[0]!;
        if (options.signal?.aborted) {
          tf.dispose([x, y, ...(w ? [w] : [])]);
          throw options.signal.reason ?? new Error('head training aborted');
        }
        if (stepper) stepper.step(x, y, w);
        else await model.trainOnBatch(x, y);
        tf.dispose([x, y, ...(w ? [w] : [])]);
      };
      if (stream) {
        // Files read batch by batch through the seeded shuffle buffer (stream.ts).
        let steps = 0;
        for await (const b of stream.batches(e)) {
          await step(
            tf.tensor2d(b.features, [b.rows, stream.dimension]),
            tf.tidy(() => tf.oneHot(tf.tensor1d(b.labels, 'int32'), numClasses).toFloat()),
            weightOf(b.labels),
          );
          if (++steps % 256 === 0) await new Promise((r) => setImmediate(r));
        }
      } else {
        // A seeded permutation per epoch (tfjs's shuffle draws from Math.random).
        const rowsN = memory!.rows;
        const permutation = Int32Array.from(epochOrder(rowsN, seed, e));
        const order = tf.tensor1d(permutation, 'int32');
        const [px, py] = tf.tidy(() => [tf.gather(xs!, order), tf.gather(yOneHot!, order)]);
        order.dispose();
        const labelsInOrder = rowWeights ? Int32Array.from(permutation, (i) => memory!.labels[i]!) : null;
        try {
          for (let start = 0, steps = 0; start < rowsN; start += batchSize, steps++) {
            const rows = Math.min(batchSize, rowsN - start);
            await step(
              px!.slice([start, 0], [rows, train.dimension]),
              py!.slice([start, 0], [rows, numClasses]),
              labelsInOrder ? weightOf(labelsInOrder.subarray(start, start + rows)) : undefined,
            );
            if (steps % 256 === 255) await new Promise((r) => setImmediate(r)); // keep the event loop responsive
          }
        } finally {
          px!.dispose();
          py!.dispose();
        }
      }
      if (stepper) {
        const weights = stepper.weights();
        model.setWeights(weights);
        tf.dispose(weights);
      }
      // End-of-epoch loss and accuracy over the whole training set (Keras reports the running mean over the epoch).
      const scores = (x: Tensor, y: Tensor) => {
        const out = model.evaluate(x, y, { batchSize: 2048 }) as Tensor[];
        const values = out.map((t) => t.dataSync()[0]!);
        tf.dispose(out);
        return values;
      };
      // Streams have no training set in memory to score: their training loss/accuracy are NaN.
      const [loss, acc] = xs && yOneHot ? scores(xs, yOneHot) : [Number.NaN, Number.NaN];
      const [valLoss, valAcc] = scores(vx, vy);
      // A loss that went non-finite stays so: stop, rather than finish with meaningless scores.
      for (const [name, value] of [
        ['training loss', loss],
        ['validation loss', valLoss],
      ] as const) {
        if (!Number.isFinite(value) && !(name === 'training loss' && !(xs && yOneHot))) {
          throw new Error(
            `head training diverged at epoch ${e + 1}: the ${name} is ${value} (lower options.learningRate, now ${rate}, or check the features for extreme values)`,
          );
        }
      }
      history.push({ epoch: e, loss: loss!, acc: acc!, valLoss: valLoss!, valAcc: valAcc!, lr: rate });
      rates.endEpoch(history[e]!, rate);
      csv?.write(e, history[e]!, rate);
      if (options.keepBest && bestByMonitor.offer(e, history[e]!)) {
        if (kept) tf.dispose(kept);
        kept = model.getWeights().map((w) => w.clone());
      }
      options.onEpochEnd?.(e, { ...history[e]!, epochs, seconds: (performance.now() - epochStarted) / 1000, rows: epochRows });
      if (valLoss! < best.loss - minDelta) {
        if (best.weights) tf.dispose(best.weights);
        best = { loss: valLoss!, epoch: e, weights: patience !== undefined && restoreBest ? model.getWeights().map((w) => w.clone()) : null };
      } else if (patience !== undefined && e - best.epoch >= patience) {
        stoppedEarly = true;
        break;
      }
    }
    if (stoppedEarly && best.weights) model.setWeights(best.weights);
    if (kept && bestByMonitor.epoch !== history.length - 1) model.setWeights(kept);
  } catch (error) {
    // Aborted or failed: nothing is returned, so nothing may stay allocated.
    tf.dispose([vx, vy]);
    model.optimizer.dispose();
    model.dispose();
    throw error;
  } finally {
    stepper?.dispose();
    tf.dispose([...initial, ...(xs ? [xs] : []), ...(yOneHot ? [yOneHot] : []), ...(best.weights ?? []), ...(kept ?? [])]);
  }
  // Training is over: the optimizer's state goes (tfjs keeps an optimizer passed to compile() alive
  // beyond model.dispose()). The returned model predicts and evaluates; compile it again to train on.
  model.optimizer.dispose();
  const predicted = tf.tidy(() => (model.predict(vx) as Tensor).argMax(-1));
  const predictions = await predicted.data();
  predicted.dispose();
  vx.dispose();
  vy.dispose();
  let correct = 0;
  for (let i = 0; i < val.rows; i++) if (predictions[i] === val.labels[i]) correct++;
  return { model, history, valAccuracy: correct / val.rows, seconds: (performance.now() - started) / 1000, bestEpoch: best.epoch, stoppedEarly };
}
