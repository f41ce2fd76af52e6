/**
 * The two ways base training runs a step, behind one interface:
 * - graph: the model compiled into one TensorFlow graph, on data-parallel replicas (graph/);
 * - eager: tfjs's `trainOnBatch`, op by op, in the tfjs-node context (any tfjs model, one replica).
 * trainBase picks one, and checkpoints, validation and progress work the same on both.
 * @internal
 */
import { DEFAULT_SEED } from '@featherstack/common';
import type { ImageBatch } from '@featherstack/images';
import { eagerOptimizer, type LayersModel, planThreads, setOptimizerLearningRate, type Tensor, type Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';
import {
  type CompiledGraph,
  type CompileOptions,
  compileModel,
  GraphCompileError,
  type LossKind,
  type OptimizerKind,
  type Precision,
} from './graph/compile.js';
import { GraphReplicas, type StepResult } from './graph/replicas.js';

export const ENGINE_KINDS = ['graph', 'eager'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];

export interface EngineOptions {
  /** 'graph' or 'eager'; default: graph where the model compiles, else eager. */
  engine?: EngineKind;
  /** Data-parallel replicas (graph engine). Default: the thread plan's. */
  replicas?: number;
  /** Intra-op threads of each replica. Default: the thread plan's. */
  threadsPerReplica?: number;
  /** Seed of the graph's dropout masks. */
  seed?: number;
  /** The graph engine's compute precision (see CompileOptions.precision). Default 'float32'. */
  precision?: Precision;
}

/** Arrays with their shapes: weights or optimizer state, as checkpoints store them. */
export interface Arrays {
  values: Float32Array[];
  shapes: number[][];
}

export interface TrainingEngine {
  readonly kind: EngineKind;
  readonly replicas: number;
  /** One step; `classWeights` (by class index) weigh each row's loss, as Keras's class_weight (graph engine only). */
  train(batch: ImageBatch, numClasses: number, classWeights?: Float32Array): Promise<StepResult>;
  evaluate(batch: ImageBatch, numClasses: number): Promise<StepResult>;
  weights(): Promise<Arrays>;
  optimizerState(): Promise<Arrays>;
  restore(weights: Arrays, optimizer: Arrays): Promise<void>;
  /** The learning rate of the next steps (a schedule or reduce-on-plateau changes it between epochs). */
  setLearningRate(lr: number): void;
  /** Leaves the trained weights in the model and frees the engine. */
  close(): Promise<void>;
}

function labelsOf(batch: ImageBatch): Float32Array {
  const labels = batch.labels();
  if (!labels) throw invalidOption('flow.classMode', "'categorical', 'sparse' or 'binary' to train a classifier", 'none');
  return labels instanceof Float32Array ? labels : Float32Array.from(labels);
}

function pixelsOf(batch: ImageBatch): Float32Array {
  return batch.images instanceof Float32Array ? batch.images : Float32Array.from(batch.images);
}

function tensorsToArrays(tensors: Tensor[]): Arrays {
  return { values: tensors.map((t) => t.dataSync() as Float32Array), shapes: tensors.map((t) => [...t.shape]) };
}

/** Sets `model`'s weights from arrays (model.getWeights() order). */
function setModelWeights(tf: Tf, model: LayersModel, weights: Arrays): void {
  const tensors = weights.values.map((v, i) => tf.tensor(v, weights.shapes[i]));
  model.setWeights(tensors);
  tf.dispose(tensors);
}

/** Tensors for one batch. The pixels are uploaded to TensorFlow by the first op that uses them. */
export function batchTensors(tf: Tf, batch: ImageBatch, numClasses: number): { x: Tensor; y: Tensor } {
  const x = tf.tensor4d(batch.images, batch.shape);
  const labels = labelsOf(batch);
  const y = labels.length === batch.size * numClasses ? tf.tensor2d(labels, [batch.size, numClasses]) : tf.tensor2d(labels, [batch.size, 1]);
  return { x, y };
}

class GraphEngine implements TrainingEngine {
  readonly kind = 'graph';
  private iteration = 0;

  constructor(
    private readonly tf: Tf,
    private readonly model: LayersModel,
    private readonly replicaSet: GraphReplicas,
    private learningRate: number,
  ) {}

  setLearningRate(lr: number): void {
    // The rate is a feed of every step ('lr'), so the compiled graph stays as it is.
    this.learningRate = lr;
  }

  get replicas(): number {
    return this.replicaSet.replicas;
  }

  async train(batch: ImageBatch, _numClasses: number, classWeights?: Float32Array): Promise<StepResult> {
    this.iteration++;
    const weights = classWeights ? Float32Array.from(batch.classIndex.subarray(0, batch.size), (c) => classWeights[c]!) : undefined;
    return this.replicaSet.trainStep(pixelsOf(batch), labelsOf(batch), batch.size, { learningRate: this.learningRate, iteration: this.iteration }, weights);
  }

  evaluate(batch: ImageBatch): Promise<StepResult> {
    return this.replicaSet.evaluate(pixelsOf(batch), labelsOf(batch), batch.size);
  }

  async weights(): Promise<Arrays> {
    return { values: await this.replicaSet.getWeights(), shapes: this.replicaSet.compiled.variables.map((v) => v.shape) };
  }

  /** [iterations, then each trainable variable's slots (Adam: m, v)]. */
  async optimizerState(): Promise<Arrays> {
    return { values: [Float32Array.of(this.iteration), ...(await this.replicaSet.getSlots())], shapes: [[], ...this.replicaSet.slotShapes()] };
  }

  async restore(weights: Arrays, optimizer: Arrays): Promise<void> {
    const expected = this.replicaSet.slotShapes();
    if (optimizer.shapes.length !== expected.length + 1)
      throw invalidOption('checkpointDir', `a checkpoint with ${expected.length} optimizer slots for this model`, `${optimizer.shapes.length - 1} slots`);
    await this.replicaSet.setWeights(weights.values);
    await this.replicaSet.setSlots(optimizer.values.slice(1));
    this.iteration = optimizer.values[0]![0]!;
  }

  async close(): Promise<void> {
    try {
      setModelWeights(this.tf, this.model, await this.weights());
    } finally {
      await this.replicaSet.close();
    }
  }
}

class EagerEngine implements TrainingEngine {
  readonly kind = 'eager';
  readonly replicas = 1;

  constructor(
    private readonly tf: Tf,
    private readonly model: LayersModel,
  ) {}

  setLearningRate(lr: number): void {
    setOptimizerLearningRate(this.model.optimizer, lr);
  }

  async train(batch: ImageBatch, numClasses: number, classWeights?: Float32Array): Promise<StepResult> {
    // trainBase refuses class weights on this engine first: tfjs's trainOnBatch takes no weights.
    if (classWeights) throw invalidOption('classWeight', 'used with the graph engine', 'the eager engine');
    const { x, y } = batchTensors(this.tf, batch, numClasses);
    try {
      const [loss, acc] = (await this.model.trainOnBatch(x, y)) as number[];
      return { lossSum: loss! * batch.size, correct: acc! * batch.size };
    } finally {
      this.tf.dispose([x, y]);
    }
  }

  async evaluate(batch: ImageBatch, numClasses: number): Promise<StepResult> {
    const { x, y } = batchTensors(this.tf, batch, numClasses);
    const out = this.model.evaluate(x, y, { batchSize: batch.size }) as Tensor[];
    const [loss, acc] = out.map((t) => t.dataSync()[0]!);
    this.tf.dispose([x, y, ...out]);
    return { lossSum: loss! * batch.size, correct: acc! * batch.size };
  }

  async weights(): Promise<Arrays> {
    return tensorsToArrays(this.model.getWeights());
  }

  async optimizerState(): Promise<Arrays> {
    return tensorsToArrays((await this.model.optimizer.getWeights()).map((w) => w.tensor));
  }

  async restore(weights: Arrays, optimizer: Arrays): Promise<void> {
    setModelWeights(this.tf, this.model, weights);
    // The optimizer's state, e.g. Adam's iteration count then first and second moments in
    // variable order (tfjs matches them to variables by position; names are informational).
    await this.model.optimizer.setWeights(optimizer.values.map((v, i) => ({ name: `checkpoint_${i}`, tensor: this.tf.tensor(v, optimizer.shapes[i]) })));
  }

  async close(): Promise<void> {}
}

/**
 * The model compiled onto the thread plan's replicas, with its weights loaded — or null where the
 * eager engine runs instead: engine 'eager', or a model the compiler refuses when the graph engine
 * was only the default (not asked for by name, with replicas or with mixed precision). Shared by
 * training and extraction, so both choose an engine the same way. @internal
 */
export async function openReplicas(
  model: LayersModel,
  options: EngineOptions,
  compile: Omit<CompileOptions, 'precision'>,
  /** Steps on the JavaScript thread (one replica; see ReplicaOptions.synchronous). */
  synchronous = false,
): Promise<{ replicas: GraphReplicas | null; fallback?: string }> {
  if (options.engine !== undefined && options.engine !== 'graph' && options.engine !== 'eager')
    throw invalidOption('engine', "'graph' or 'eager'", options.engine);
  if (options.precision !== undefined && options.precision !== 'float32' && options.precision !== 'mixed-bfloat16') {
    throw invalidOption('precision', "'float32' or 'mixed-bfloat16'", options.precision);
  }
  if (options.engine === 'eager' && options.precision === 'mixed-bfloat16')
    throw invalidOption('precision', "'float32' with engine 'eager' (mixed precision needs the graph engine)", options.precision);
  if (options.engine === 'eager' && options.replicas !== undefined && options.replicas !== 1) {
    throw invalidOption('replicas', "1 with engine 'eager' (tfjs's ops run in one context; replicas need the graph engine)", options.replicas);
  }
  const plan = planThreads({
    ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
    ...(options.threadsPerReplica !== undefined ? { threadsPerReplica: options.threadsPerReplica } : {}),
  });
  if (options.engine === 'eager') return { replicas: null, fallback: "engine 'eager' was asked for" };
  let compiled: CompiledGraph;
  try {
    compiled = compileModel(model, { ...compile, precision: options.precision ?? 'float32', replicas: plan.replicas });
  } catch (error) {
    // The graph engine was the default choice: a model it cannot compile runs eagerly instead (and
    // training's epoch logs say so). Asked for by name, with replicas or mixed precision, it fails.
    if (!(error instanceof GraphCompileError) || options.engine === 'graph' || (options.replicas ?? 1) > 1 || options.precision === 'mixed-bfloat16')
      throw error;
    return { replicas: null, fallback: error.message.replace(/; the graph engine cannot train this model.*$/, '') };
  }
  const replicas = GraphReplicas.open(compiled, { replicas: plan.replicas, threadsPerReplica: plan.threadsPerReplica, synchronous });
  try {
    await replicas.setWeights(tensorsToArrays(model.getWeights()).values);
    if (compile.train) await replicas.setSlots();
  } catch (error) {
    await replicas.close();
    throw error;
  }
  return { replicas };
}

/** Opens the engine trainBase runs on (see EngineOptions for the choice). @internal */
export async function openEngine(
  tf: Tf,
  model: LayersModel,
  options: EngineOptions & { learningRate: number; optimizer: OptimizerKind; loss: LossKind },
): Promise<TrainingEngine> {
  const { replicas } = await openReplicas(model, options, {
    train: true,
    loss: options.loss,
    optimizer: options.optimizer,
    seed: options.seed ?? DEFAULT_SEED,
  });
  if (replicas) return new GraphEngine(tf, model, replicas, options.learningRate);
  model.compile({
    optimizer: eagerOptimizer(tf, options.optimizer, options.learningRate),
    loss: options.loss === 'binary' ? 'binaryCrossentropy' : options.loss === 'sparse' ? 'sparseCategoricalCrossentropy' : 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  return new EagerEngine(tf, model);
}
