/**
 * The two engines a head trains on, behind one interface:
 * - `graph` (the default for dense heads): the head compiled by core's graph compiler into one
 *   TensorFlow session, so a training step — forward, loss, backward and optimizer update — is one
 *   native call, as Keras's compiled train step is; scoring runs on the same session.
 * - `eager`: tfjs ops, for heads the compiler cannot express (the recurrent ones) and when asked
 *   for by name: Adam through the fused dense step (dense.ts), other optimizers through tfjs's
 *   trainOnBatch.
 * Both take batches as rows of a Float32Array and class indices, gathered in JavaScript.
 * @internal
 */
import type { EngineKind } from '@featherstack/core';
import type { GraphReplicas } from '@featherstack/core/internal';
import { openReplicas } from '@featherstack/core/internal';
import { eagerOptimizer, type LayersModel, type OptimizerKind, setOptimizerLearningRate, type Tensor, type Tf } from '@featherstack/tensorflow';
import { type DenseStepper, denseStepper } from './dense.js';
import { invalidOption } from './errors.js';

/** Rows to score: row-major features and a class index per row. */
export interface Rows {
  rows: number;
  features: Float32Array;
  labels: Int32Array;
}

export interface HeadEngine {
  readonly kind: EngineKind;
  /** Why the graph engine is not running (the compiler's refusal), when it was not asked for. */
  readonly fallback?: string;
  setLearningRate(rate: number): void;
  /** One optimizer step on a batch; `weights` each row's loss weight (class_weight). */
  step(batch: Rows, weights?: Float32Array): Promise<void>;
  /** Mean loss and accuracy over `set`, without training. */
  scores(set: Rows): Promise<[loss: number, accuracy: number]>;
  /** The current weights, in model.getWeights() order. */
  weights(): Promise<Float32Array[]>;
  setWeights(weights: Float32Array[]): Promise<void>;
  /** Leaves the trained weights in the model and frees the engine's state. */
  close(): Promise<void>;
}

export interface HeadEngineOptions {
  engine?: EngineKind;
  optimizer: OptimizerKind;
  learningRate: number;
  classes: number;
  /** Values per feature row. */
  dimension: number;
  /** Whether the engine must weigh rows (the eager engine does so only with the fused Adam step). */
  weighted: boolean;
  /** Intra-op threads of the graph session. */
  threads?: number;
  seed: number;
}

/** Rows scored per native call. */
const SCORE_ROWS = 4096;

/**
 * Opens the engine for `model` (a sequential head, already built): the graph engine unless
 * `engine` is 'eager' or the compiler refuses the model when the graph was only the default.
 */
export async function openHeadEngine(tf: Tf, model: LayersModel, options: HeadEngineOptions): Promise<HeadEngine> {
  if (options.engine !== 'eager') {
    // One replica, one thread, steps on this thread: a head's step at batch 32 is tens of
    // microseconds of arithmetic, less than exchanging gradients between replicas, handing work to
    // a thread pool or settling a promise from another thread would cost (measured on a
    // 64 → 128 → 10 head: 203 µs a step so, 305 µs run on a thread of its own, 430 µs with 2
    // TensorFlow threads).
    const { replicas, fallback } = await openReplicas(
      model,
      { engine: options.engine, replicas: 1, threadsPerReplica: options.threads ?? 1, seed: options.seed },
      { train: true, loss: 'sparse', optimizer: options.optimizer, seed: options.seed },
      true,
    );
    if (replicas) return new GraphHeadEngine(tf, model, replicas, options);
    return new EagerHeadEngine(tf, model, options, fallback);
  }
  return new EagerHeadEngine(tf, model, options);
}

class GraphHeadEngine implements HeadEngine {
  readonly kind = 'graph';
  private rate: number;
  private iteration = 0;
  private labels = new Float32Array(0);
  constructor(
    private readonly tf: Tf,
    private readonly model: LayersModel,
    private readonly replicas: GraphReplicas,
    private readonly options: HeadEngineOptions,
  ) {
    this.rate = options.learningRate;
  }

  setLearningRate(rate: number) {
    this.rate = rate;
  }

  /** The sparse loss takes class indices as floats. */
  private labelsOf(labels: Int32Array): Float32Array {
    if (this.labels.length < labels.length) this.labels = new Float32Array(labels.length);
    const out = this.labels.subarray(0, labels.length);
    for (let i = 0; i < labels.length; i++) out[i] = labels[i]!;
    return out;
  }

  async step(batch: Rows, weights?: Float32Array) {
    await this.replicas.trainStep(
      batch.features.subarray(0, batch.rows * this.options.dimension),
      this.labelsOf(batch.labels.subarray(0, batch.rows)),
      batch.rows,
      { learningRate: this.rate, iteration: ++this.iteration },
      weights,
    );
  }

  async scores(set: Rows): Promise<[number, number]> {
    const { dimension } = this.options;
    let loss = 0;
    let correct = 0;
    for (let start = 0; start < set.rows; start += SCORE_ROWS) {
      const end = Math.min(set.rows, start + SCORE_ROWS);
      const r = await this.replicas.evaluate(
        set.features.subarray(start * dimension, end * dimension),
        this.labelsOf(set.labels.subarray(start, end)),
        end - start,
      );
      loss += r.lossSum;
      correct += r.correct;
    }
    return [loss / set.rows, correct / set.rows];
  }

  weights() {
    return this.replicas.getWeights();
  }

  setWeights(weights: Float32Array[]) {
    return this.replicas.setWeights(weights);
  }

  async close() {
    try {
      const weights = await this.replicas.getWeights();
      const tensors = weights.map((w, i) => this.tf.tensor(w, this.model.weights[i]!.shape as number[]));
      this.model.setWeights(tensors);
      this.tf.dispose(tensors);
    } finally {
      await this.replicas.close();
    }
  }
}

class EagerHeadEngine implements HeadEngine {
  readonly kind = 'eager';
  private readonly stepper: DenseStepper | null;
  private readonly stepOptions: { learningRate: number };
  private readonly shapes: number[][];
  constructor(
    private readonly tf: Tf,
    private readonly model: LayersModel,
    private readonly options: HeadEngineOptions,
    readonly fallback?: string,
  ) {
    this.shapes = model.weights.map((w) => w.shape as number[]);
    this.stepOptions = { learningRate: options.learningRate };
    // Dense heads with Adam train with the fused step (dense.ts); the rest through tfjs's layers.
    const dense = model.layers.every((l) => l.getClassName() === 'Dense');
    if (dense && options.optimizer === 'adam') {
      const initial = model.getWeights().map((w) => w.clone()); // getWeights() hands out the variables themselves
      this.stepper = denseStepper(tf, initial, this.stepOptions);
      tf.dispose(initial);
    } else {
      this.stepper = null;
      // tfjs's trainOnBatch takes no row weights.
      if (options.weighted)
        throw invalidOption('classWeight', "used with the graph engine, or a dense head and the 'adam' optimizer on the eager engine", 'class weights');
    }
    model.compile({ optimizer: eagerOptimizer(tf, options.optimizer, options.learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  }

  setLearningRate(rate: number) {
    this.stepOptions.learningRate = rate;
    setOptimizerLearningRate(this.model.optimizer, rate);
  }

  async step(batch: Rows, weights?: Float32Array) {
    const { tf } = this;
    const { dimension } = this.options;
    const x = tf.tensor2d(batch.features.subarray(0, batch.rows * dimension), [batch.rows, dimension]);
    const y = this.oneHot(batch.labels.subarray(0, batch.rows));
    const w = weights && this.stepper ? tf.tensor1d(weights.subarray(0, batch.rows)) : undefined;
    try {
      if (this.stepper) this.stepper.step(x, y, w);
      else await this.model.trainOnBatch(x, y);
      this.stale = this.stepper !== null;
    } finally {
      tf.dispose([x, y, ...(w ? [w] : [])]);
    }
  }

  private oneHot(labels: Int32Array): Tensor {
    return this.tf.tidy(() => this.tf.oneHot(this.tf.tensor1d(labels, 'int32'), this.options.classes).toFloat());
  }

  /** Whether the fused step holds weights the model does not have yet. */
  private stale = false;

  private syncModel() {
    if (!this.stepper || !this.stale) return;
    this.stale = false;
    const weights = this.stepper.weights();
    this.model.setWeights(weights);
    this.tf.dispose(weights);
  }

  async scores(set: Rows): Promise<[number, number]> {
    const { tf } = this;
    this.syncModel();
    const x = tf.tensor2d(set.features.subarray(0, set.rows * this.options.dimension), [set.rows, this.options.dimension]);
    const y = this.oneHot(set.labels.subarray(0, set.rows));
    try {
      const out = this.model.evaluate(x, y, { batchSize: 2048 }) as Tensor[];
      const values = out.map((t) => t.dataSync()[0]!);
      tf.dispose(out);
      return [values[0]!, values[1]!];
    } finally {
      tf.dispose([x, y]);
    }
  }

  async weights() {
    this.syncModel();
    return this.model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  }

  async setWeights(weights: Float32Array[]) {
    const tensors = weights.map((w, i) => this.tf.tensor(w, this.shapes[i]!));
    this.model.setWeights(tensors);
    this.stepper?.load(tensors);
    this.stale = false;
    this.tf.dispose(tensors);
  }

  async close() {
    this.syncModel();
    this.stepper?.dispose();
    // tfjs keeps an optimizer passed to compile() alive beyond model.dispose().
    this.model.optimizer.dispose();
  }
}
