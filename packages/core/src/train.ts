/**
 * Base training: a batch loop over an image flow. The next batch is already being decoded by the
 * pool while TensorFlow trains on the current one (the flow prefetches).
 *
 * Per epoch it can validate on a non-augmenting flow, stop early on validation loss, write a
 * checkpoint (weights + optimizer state + history) that a killed run resumes from, and log scalars
 * for TensorBoard.
 */
import { readFile, writeFile } from 'node:fs/promises';
import {
  BestEpoch,
  CsvLog,
  classWeights,
  LearningRates,
  type Monitor,
  recoverDirectory,
  type TrainingControls,
  watchedValidation,
  writeDirectoryAtomic,
} from '@featherstack/common';
import { join, resolve } from 'node:path';
import type { ImageFlow } from '@featherstack/images';
import { type LayersModel, OPTIMIZER_CHOICES, type OptimizerKind, OPTIMIZERS, type Tf } from '@featherstack/tensorflow';
import { type Arrays, type EngineKind, type EngineOptions, openEngine, type TrainingEngine } from './engines.js';
import { perImageSize } from './cut.js';
import { CoreOptionError, invalidOption, TrainingDivergedError } from './errors.js';
import type { LossKind } from './graph/compile.js';

/**
 * The training controls (schedule, warm-up, reduce-on-plateau, CSV log, bestMonitor) are common's,
 * shared with the head; `keepBest` ends with the weights of the epoch best by bestMonitor.
 */
export interface TrainBaseOptions extends EngineOptions, TrainingControls {
  epochs?: number;
  learningRate?: number;
  /** 'adam' (default), 'sgd', 'momentum' (0.9) or 'rmsprop'. */
  optimizer?: OptimizerKind;
  signal?: AbortSignal;
  /** A non-augmenting flow evaluated after every epoch (valLoss / valAcc in the log). */
  validation?: ImageFlow;
  /** Stop after this many epochs without validation-loss improvement (needs `validation`). */
  patience?: number;
  /**
   * Directory for a checkpoint after every epoch (the model's weights, the optimizer's state and the
   * history so far). With `resume: true`, training continues from the checkpoint found there.
   */
  checkpointDir?: string;
  resume?: boolean;
  /** Directory for TensorBoard event files (tfjs-node's summary writer): loss/acc per epoch. */
  tensorBoardDir?: string;
  /**
   * End with the weights of the epoch best by `bestMonitor` (default val_loss), not the last: Keras's
   * ModelCheckpoint(save_best_only=True) for the model that is then saved. Kept in the checkpoint too.
   */
  keepBest?: boolean;
  /** Called after every epoch with its log. */
  onEpochEnd?: (epoch: number, logs: EpochLog) => void;
  /** Called after every batch: progress within the epoch, with the running loss and accuracy. */
  onBatch?: (progress: { epoch: number; batch: number; batches: number; images: number; seconds: number; loss: number; acc: number }) => void;
}

export interface EpochLog {
  epoch: number;
  loss: number;
  acc: number;
  seconds: number;
  imagesPerSecond: number;
  valLoss?: number;
  valAcc?: number;
  /** The learning rate the epoch trained at. */
  lr?: number;
  /** The engine that trained this epoch, and on how many replicas. */
  engine?: EngineKind;
  replicas?: number;
}

interface Checkpoint {
  /** Epochs completed. */
  epochs: number;
  optimizer: string;
  /** The engine whose optimizer state this is (absent: eager, written before engines existed). */
  engine?: EngineKind;
  history: EpochLog[];
  weightShapes: number[][];
  optimizerShapes: number[][];
  /** With keepBest: the epoch whose weights best.bin holds, by the monitor named. */
  best?: { epoch: number; monitor: Monitor; value: number };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function saveCheckpoint(
  dir: string,
  engine: EngineKind,
  optimizer: string,
  weights: Arrays,
  optimizerState: Arrays,
  history: EpochLog[],
  best: { epoch: number; monitor: Monitor; value: number; weights: Arrays } | null,
): Promise<void> {
  // Written beside, then renamed over the previous one: a run killed mid-write, or a full disk,
  // keeps the last good checkpoint and leaves no partial directory.
  const meta: Checkpoint = { epochs: history.length, optimizer, engine, history, weightShapes: weights.shapes, optimizerShapes: optimizerState.shapes };
  if (best) meta.best = { epoch: best.epoch, monitor: best.monitor, value: best.value };
  await writeDirectoryAtomic(dir, 'the checkpoint', async (tmp) => {
    await writeFile(join(tmp, 'weights.bin'), concat(weights.values));
    await writeFile(join(tmp, 'optimizer.bin'), concat(optimizerState.values));
    if (best) await writeFile(join(tmp, 'best.bin'), concat(best.weights.values));
    await writeFile(join(tmp, 'checkpoint.json'), `${JSON.stringify(meta)}\n`);
  });
}

async function loadCheckpoint(dir: string): Promise<{ meta: Checkpoint; weights: Arrays; optimizer: Arrays; best: Arrays | null } | null> {
  let meta: Checkpoint;
  await recoverDirectory(dir);
  try {
    meta = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as Checkpoint;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw invalidOption('checkpointDir', `a directory holding a readable checkpoint (${join(dir, 'checkpoint.json')}: ${(error as Error).message})`, dir);
  }
  const split = async (file: string, shapes: number[][]): Promise<Arrays> => {
    const bytes = await readFile(join(dir, file));
    const expected = shapes.reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0);
    if (bytes.byteLength !== expected * 4) {
      throw invalidOption(
        'checkpointDir',
        `a checkpoint whose ${file} holds the ${expected * 4} bytes its checkpoint.json describes (truncated or damaged)`,
        `${join(dir, file)} of ${bytes.byteLength} bytes`,
      );
    }
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    let o = 0;
    const values = shapes.map((shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      o += n;
      return all.slice(o - n, o);
    });
    return { values, shapes };
  };
  return {
    meta,
    weights: await split('weights.bin', meta.weightShapes),
    optimizer: await split('optimizer.bin', meta.optimizerShapes),
    best: meta.best ? await split('best.bin', meta.weightShapes) : null,
  };
}

/**
 * Trains `model` (a base with its temporary classifier) on `flow` for `epochs` epochs.
 *
 * The graph engine (default) compiles the model into one TensorFlow graph per step and trains it on
 * `replicas` data-parallel sessions; models it cannot compile (see GraphCompileError) train on the
 * eager engine, tfjs's own ops in one context, unless the graph engine or several replicas were
 * asked for (then the compile error is thrown). Each epoch's log names the engine that ran.
 *
 * @example
 * const history = await trainBase(tf, withClassifier(tf, base, 10), flow, { epochs: 5, validation: valFlow, patience: 2 });
 */
export async function trainBase(tf: Tf, model: LayersModel, flow: ImageFlow, options: TrainBaseOptions = {}): Promise<EpochLog[]> {
  const epochs = options.epochs ?? 5;
  if (!Number.isInteger(epochs) || epochs < 1) throw invalidOption('epochs', 'a positive integer', epochs);
  const lr = options.learningRate ?? 1e-3;
  if (!(typeof lr === 'number' && lr > 0 && Number.isFinite(lr))) throw invalidOption('learningRate', 'a positive number', lr);
  if (options.patience !== undefined && (!Number.isInteger(options.patience) || options.patience < 0))
    throw invalidOption('patience', 'a non-negative integer', options.patience);
  if (options.patience !== undefined && !options.validation) throw invalidOption('patience', 'used together with options.validation', options.patience);
  if (options.resume && !options.checkpointDir) throw invalidOption('resume', 'used together with options.checkpointDir', true);
  // The controls are checked before anything trains; a validation score needs validation data.
  const rates = new LearningRates(lr, epochs, options, CoreOptionError);
  const monitor = rates.controls.bestMonitor;
  const [unscored] = options.validation ? [] : watchedValidation(rates.controls, options.keepBest);
  if (unscored) throw invalidOption(unscored.option, `used together with options.validation (it watches ${unscored.monitor})`, unscored.monitor);
  const kind = options.optimizer ?? 'adam';
  if (!(OPTIMIZERS as readonly string[]).includes(kind)) throw invalidOption('optimizer', OPTIMIZER_CHOICES, kind);
  const numClasses = flow.classNames.length;
  if (numClasses < 2) {
    throw invalidOption(
      'flow',
      `a dataset of at least 2 classes to train a classifier`,
      `${flow.root || 'a flow'} with ${numClasses} class${numClasses === 1 ? '' : 'es'} ${JSON.stringify(flow.classNames)}`,
    );
  }
  // Labels are class indices: a validation flow listing other classes (one missing, one extra)
  // would score the model against shifted labels.
  if (options.validation && JSON.stringify(options.validation.classNames) !== JSON.stringify(flow.classNames)) {
    throw invalidOption(
      'validation',
      `a flow with the training classes ${JSON.stringify(flow.classNames)} (validation must use the training class indices)`,
      `${options.validation.root ?? 'a flow'} with ${JSON.stringify(options.validation.classNames)}`,
    );
  }
  const engine = await openEngine(tf, model, { ...options, learningRate: lr, optimizer: kind, loss: lossOf(flow) });
  // Keras's class_weight, by class index, from the training flow's classes and their counts.
  let weights: Float32Array | undefined;
  try {
    weights = options.classWeight === undefined ? undefined : classWeights(options.classWeight, flow.classNames, flow.classes, CoreOptionError);
    if (weights && engine.kind === 'eager') {
      throw invalidOption(
        'classWeight',
        "used with the graph engine (this model trains on the eager engine, and tfjs's trainOnBatch takes no weights)",
        options.classWeight,
      );
    }
  } catch (error) {
    await engine.close();
    throw error;
  }
  try {
    const history: EpochLog[] = [];
    const best = new BestEpoch(monitor);
    let bestWeights: Arrays | null = null;
    const checkpointDir = options.checkpointDir ? resolve(options.checkpointDir) : null;
    if (checkpointDir && options.resume) {
      const saved = await resumeFrom(checkpointDir, engine, model, kind);
      history.push(...saved.history);
      bestWeights = saved.best;
    }
    // A resumed run's schedule, plateau and best epoch continue where the killed one stood.
    rates.replay(history);
    if (options.keepBest) for (const [e, h] of history.entries()) best.offer(e, h);
    const csv = options.csvLog ? new CsvLog(resolve(options.csvLog), history.length) : null;
    const writer = options.tensorBoardDir
      ? (tf as unknown as { node: { summaryFileWriter(dir: string): SummaryWriter } }).node.summaryFileWriter(resolve(options.tensorBoardDir))
      : null;
    // Early stopping (patience) watches validation loss on its own, as Keras's EarlyStopping.
    let stopping = { loss: Infinity, epoch: -1 };
    for (const h of history) if (h.valLoss !== undefined && h.valLoss < stopping.loss) stopping = { loss: h.valLoss, epoch: h.epoch };
    for (let epoch = history.length; epoch < epochs; epoch++) {
      const started = performance.now();
      const rate = rates.rateFor(epoch);
      engine.setLearningRate(rate);
      let loss = 0;
      let correct = 0;
      let seen = 0;
      for await (const batch of flow.epoch(epoch, options.signal ? { signal: options.signal } : {})) {
        // Awaited before the next batch is requested: the slot's memory stays valid while TF reads it.
        const step = await engine.train(batch, numClasses, weights);
        if (!Number.isFinite(step.lossSum)) {
          throw new TrainingDivergedError(
            `base training diverged at epoch ${epoch + 1}, batch ${batch.index + 1} of ${flow.length} (first image ${batch.paths[0] ?? '?'}): the loss is ${step.lossSum}. ` +
              `Check the pixel scale (augment.rescale is ${flow.augment.rescale}; pixels should end near [0, 1] or [-1, 1]) and lower the learning rate (${rate}); ` +
              'the last good epoch stays checkpointed',
          );
        }
        loss += step.lossSum;
        correct += step.correct;
        seen += batch.size;
        options.onBatch?.({
          epoch,
          batch: batch.index + 1,
          batches: flow.length,
          images: seen,
          seconds: (performance.now() - started) / 1000,
          loss: loss / seen,
          acc: correct / seen,
        });
      }
      const seconds = (performance.now() - started) / 1000;
      const log: EpochLog = {
        epoch,
        loss: loss / seen,
        acc: correct / seen,
        seconds,
        imagesPerSecond: seen / seconds,
        lr: rate,
        engine: engine.kind,
        replicas: engine.replicas,
      };
      if (options.validation) Object.assign(log, await evaluateOn(engine, options.validation, numClasses, options.signal));
      history.push(log);
      rates.endEpoch(log, rate);
      if (options.keepBest && best.offer(epoch, log)) bestWeights = await engine.weights();
      csv?.write(epoch, log, rate);
      if (writer) {
        for (const [k, v] of Object.entries({ loss: log.loss, acc: log.acc, val_loss: log.valLoss, val_acc: log.valAcc }))
          if (v !== undefined) writer.scalar(k, v, epoch);
        writer.flush();
      }
      if (checkpointDir) {
        const kept = bestWeights ? { epoch: best.epoch, monitor, value: best.value, weights: bestWeights } : null;
        await saveCheckpoint(checkpointDir, engine.kind, kind, await engine.weights(), await engine.optimizerState(), history, kept);
      }
      options.onEpochEnd?.(epoch, log);
      if (log.valLoss !== undefined && log.valLoss < stopping.loss) stopping = { loss: log.valLoss, epoch };
      else if (options.patience !== undefined && epoch - stopping.epoch >= options.patience) break;
    }
    // keepBest: the model ends with the best epoch's weights (the optimizer's state stays the last).
    if (bestWeights && best.epoch !== history.length - 1) await engine.restore(bestWeights, await engine.optimizerState());
    return history;
  } finally {
    // The model holds what was trained, also when training stopped early (abort, failure).
    await engine.close();
  }
}

/**
 * Restores `engine` from the checkpoint in `dir` (when there is one), refusing one of another
 * optimizer, engine or architecture, or holding non-finite values; returns its history and, with
 * keepBest, the best epoch's weights.
 */
async function resumeFrom(
  checkpointDir: string,
  engine: TrainingEngine,
  model: LayersModel,
  kind: OptimizerKind,
): Promise<{ history: EpochLog[]; best: Arrays | null }> {
  const saved = await loadCheckpoint(checkpointDir);
  if (!saved) return { history: [], best: null };
  if ((saved.meta.optimizer ?? 'adam') !== kind) {
    throw invalidOption('optimizer', `'${saved.meta.optimizer}', the optimizer of the checkpoint in ${checkpointDir}`, kind);
  }
  if ((saved.meta.engine ?? 'eager') !== engine.kind) {
    throw invalidOption(
      'engine',
      `'${saved.meta.engine ?? 'eager'}', the engine that wrote the checkpoint in ${checkpointDir} (optimizer state differs between engines)`,
      engine.kind,
    );
  }
  // Both engines number weights as model.weights does: its shapes are the expected ones.
  const expected = model.weights.map((w) => [...w.shape]);
  if (JSON.stringify(saved.weights.shapes) !== JSON.stringify(expected)) {
    throw invalidOption(
      'checkpointDir',
      `a checkpoint of this model (weight shapes ${JSON.stringify(expected)}; another image size, colour mode or architecture gives other shapes)`,
      `${checkpointDir} with weight shapes ${JSON.stringify(saved.weights.shapes)}`,
    );
  }
  for (const [name, arrays] of [
    ['weight', saved.weights],
    ['optimizer slot', saved.optimizer],
  ] as const) {
    const bad = arrays.values.findIndex((v) => !v.every(Number.isFinite));
    if (bad !== -1) {
      throw new TrainingDivergedError(
        `checkpoint in ${checkpointDir} holds non-finite values (${name} ${bad}${name === 'weight' ? `, ${model.weights[bad]?.name ?? '?'}` : ''}, shape ${JSON.stringify(arrays.shapes[bad])}): it cannot be resumed; delete it to train from the start`,
      );
    }
  }
  await engine.restore(saved.weights, saved.optimizer);
  return { history: saved.meta.history, best: saved.best };
}

function lossOf(flow: ImageFlow): LossKind {
  if (flow.classMode === 'binary') return 'binary';
  if (flow.classMode === 'sparse') return 'sparse';
  if (flow.classMode === 'categorical') return 'categorical';
  throw invalidOption('flow.classMode', "'categorical', 'sparse' or 'binary' to train a classifier", flow.classMode);
}

interface SummaryWriter {
  scalar(name: string, value: number, step: number): void;
  flush(): void;
}

/** Mean loss and accuracy over one pass of a (non-augmenting) flow. */
async function evaluateOn(engine: TrainingEngine, flow: ImageFlow, numClasses: number, signal?: AbortSignal): Promise<{ valLoss: number; valAcc: number }> {
  let loss = 0;
  let correct = 0;
  let seen = 0;
  for await (const batch of flow.epoch(0, signal ? { signal } : {})) {
    const step = await engine.evaluate(batch, numClasses);
    loss += step.lossSum;
    correct += step.correct;
    seen += batch.size;
  }
  return { valLoss: loss / seen, valAcc: correct / seen };
}

/**
 * Bytes base training on `model` needs at `batchSize`, estimated: the parameters six times (the
 * model's weights, the session's copy, a gradient, Adam's two moments and the step's temporaries),
 * twice more per extra replica (its weights and its gradient), and each layer's output three times per image (kept for the
 * backward pass, its gradient, and a temporary). The seed CNN at 224², batch 32: 1.8 GB estimated,
 * 2.0–2.4 GB peak RSS measured; at 1000² the estimate is 36 GB, where a run grew past 18 GB and
 * died of SIGSEGV.
 */
export function trainingFootprint(model: LayersModel, batchSize: number, replicas = 1): { bytes: number; parameters: number; activations: number } {
  const parameters = model.countParams();
  let activations = 0;
  for (const layer of model.layers) activations += perImageSize(layer.outputShape);
  return { bytes: 4 * (parameters * (6 + 2 * (replicas - 1)) + 3 * batchSize * activations), parameters, activations };
}
