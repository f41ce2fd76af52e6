/**
 * Compiles a tfjs layers model into one TensorFlow graph: the forward pass of any functional model
 * (forward.ts, over the table of layer kinds in kinds/), and for training the loss (loss.ts), the
 * gradients written out step by step (backward.ts) and the optimizer's update as one fused kernel
 * per variable (optimizers.ts). TensorFlow's graph optimiser then fuses conv + bias + activation
 * and schedules the weight and input gradients itself, as Keras's tf.function gets them.
 *
 * The graph has two ways to apply an update, so that the same graph serves one replica or many:
 * - `apply`: the gradients computed in this run (one replica: a whole step is one native call);
 * - `apply_fed`: gradients fed through `grad_in/<i>` (replicas: each computes the gradients of its
 *   slice, they are summed in shared memory, and every replica applies the same sum).
 *
 * A model whose BatchNormalization layers train needs the statistics of the whole global batch in
 * the middle of every replica's forward and backward. Such a graph holds its replicas itself: copy r
 * of the forward, loss and backward is named under `r<r>/` (feeds `r0/x`, `r0/y`, …), the
 * per-channel sums are added across copies (replica-sums.ts), the gradients are summed into
 * `grad/<k>` and one `apply` updates the weights and moving averages; `train/loss_sum` and
 * `train/correct` are the step's. One session runs it with an inter-op thread per replica. The
 * unprefixed forward (BatchNormalization on its moving averages) serves validation and predict.
 *
 * A layer the table does not know, or one without a gradient on a path that training needs, is
 * refused by name (GraphCompileError), and the eager engine runs the model instead.
 * @internal
 */
import { F32, type LayersModel } from '@featherstack/tensorflow';
import { buildBackward } from './backward.js';
import { createContext, type GraphContext, type GraphVariable, type Precision } from './context.js';
import { buildForward, type Forward, isModel, type ModelLike } from './forward.js';
import { trainsBatchStatistics } from './kinds/batch-norm.js';
import type { Step } from './kinds/index.js';
import { GraphCompileError, sizeOfShape, unsupported } from './layers.js';
import { buildLoss, type LossKind } from './loss.js';
import { buildHyperparameters, buildSlots, buildUpdates, OPTIMIZER_SLOTS, type OptimizerKind } from './optimizers.js';
import { ReplicaSums } from './replica-sums.js';

export { GraphCompileError };
export type { GraphVariable, LossKind, OptimizerKind, Precision };

export interface CompileOptions {
  /** Build the loss, gradients and optimizer (false: forward only, for extraction). */
  train: boolean;
  loss?: LossKind;
  optimizer?: OptimizerKind;
  /** Seed of the dropout masks. */
  seed?: number;
  /** A layer whose output is fetchable as `output` (default: the model's last layer). */
  outputLayer?: string;
  /**
   * 'float32' (default), or 'mixed-bfloat16': layers compute in bfloat16 (half the memory traffic,
   * and twice the multiply rate on CPUs with AVX512_BF16 or AMX) while weights, optimizer state,
   * loss and gradients sent to the optimizer stay float32, as Keras's 'mixed_bfloat16' policy does.
   */
  precision?: Precision;
  /**
   * The data-parallel replicas the graph will train on (default 1). Only a graph that holds its
   * replicas (a training BatchNormalization: see the module comment) depends on it.
   */
  replicas?: number;
}

export interface CompiledGraph {
  graphDef: Uint8Array;
  /** [height, width, channels] of one input sample. */
  inputShape: number[];
  /** Units of the fetchable `output` (per sample). */
  outputSize: number;
  /** Output units of the model's last layer (classes). */
  classes: number;
  variables: GraphVariable[];
  /** Optimizer slots per trainable variable (Adam: m then v), in the order `slot/<k>` is numbered. */
  slotsPerVariable: number;
  /** The trainable variables' positions in `variables` (gradients are numbered by these). */
  trainable: number[];
  /** Layers compiled (nested models' layers included), and BatchNormalizations folded into a convolution. */
  layers: number;
  folded: number;
  /** Replicas held in this one graph (`r<r>/` feeds; a training BatchNormalization), or 0: each replica is a session of the same graph. */
  inGraphReplicas: number;
}

const ENDS_IN_PROBABILITIES = new Set(['softmax', 'sigmoid']);

/**
 * Compiles `model` into a GraphDef; see the module comment.
 *
 * @example
 * const compiled = compileModel(withClassifier(tf, base, 10), { train: true, loss: 'categorical', optimizer: 'adam' });
 */
export function compileModel(model: LayersModel, options: CompileOptions): CompiledGraph {
  if (options.precision !== undefined && options.precision !== 'float32' && options.precision !== 'mixed-bfloat16') {
    throw new GraphCompileError(`options.precision must be 'float32' or 'mixed-bfloat16', received ${JSON.stringify(options.precision)}`);
  }
  const inputShape = (model.inputs[0]!.shape as (number | null)[]).slice(1) as number[];
  if (inputShape.some((d) => d === null)) throw new GraphCompileError(`model '${model.name}' has an input of unknown size ${JSON.stringify(inputShape)}`);
  const ctx = createContext(model as never, {
    train: options.train,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.precision ? { precision: options.precision } : {}),
  });
  const { g } = ctx;
  const x = g.placeholder('x', 'float', [null, ...inputShape]);
  // A training graph always has the `training` feed, which validation sets to 0 (see trainingFlag).
  if (options.train) ctx.trainingFlag();
  const holdsReplicas = options.train && trainsBatchNorm(model as unknown as ModelLike);
  const replicas = options.replicas ?? 1;
  if (!Number.isSafeInteger(replicas) || replicas < 1) throw new GraphCompileError(`options.replicas must be a positive integer, received ${replicas}`);
  // The unprefixed forward: the whole graph, or the evaluation copy beside in-graph replicas.
  const evaluation = holdsReplicas ? { ...ctx, batchStatistics: 'moving' as const } : ctx;
  const forward = buildForward(evaluation, model as unknown as ModelLike, ctx.compute(x, 'x_compute'));
  const { last, logits } = logitsOf(ctx, forward, model.name);
  const endsInProbabilities = ENDS_IN_PROBABILITIES.has(last.activation);
  const probabilities = endsInProbabilities ? g.op(last.activation === 'softmax' ? 'Softmax' : 'Sigmoid', [logits], F32, 'probabilities') : logits;
  const target = outputStep(forward.steps, last, options.outputLayer, model.name);
  g.op('Identity', [target === last ? probabilities : ctx.toFloat(target.output)], F32, 'output');
  const inits = ctx.variables.map((v) =>
    g.op('AssignVariableOp', [ctx.handles[v.index]!, g.placeholder(`init/${v.index}`, 'float', v.shape)], { dtype: { type: 'float' } }, `assign/${v.index}`),
  );
  const training = options.train
    ? buildTraining(ctx, model as unknown as ModelLike, { forward, last, logits, inputShape }, options, holdsReplicas ? replicas : 0)
    : { trainable: [], slotInits: [], slotsPerVariable: 0 };
  g.group('init', inits);
  g.group('slot_init', training.slotInits);
  return {
    graphDef: g.toGraphDef(),
    inputShape,
    outputSize: sizeOfShape(target.outputShape),
    classes: sizeOfShape(last.outputShape),
    variables: ctx.variables,
    slotsPerVariable: training.slotsPerVariable,
    trainable: training.trainable,
    layers: forward.steps.length,
    folded: forward.steps.filter((s) => s.folded).length,
    inGraphReplicas: holdsReplicas ? replicas : 0,
  };
}

/** Whether any BatchNormalization of `model` (nested models included) trains, i.e. is not frozen. */
function trainsBatchNorm(model: ModelLike): boolean {
  return (model as unknown as { layers: ModelLike[] }).layers.some((l) => trainsBatchStatistics(l) || (isModel(l) && trainsBatchNorm(l)));
}

/** The last step of a forward, and its logits in float32 (before its softmax or sigmoid, where it ends in one). */
function logitsOf(ctx: GraphContext, forward: Forward, model: string): { last: Step; logits: string } {
  const last = forward.outputs[0]!.step;
  if (!last) throw new GraphCompileError(`model '${model}' has no layers to compile`);
  // Loss and probabilities in float32 whatever the compute type.
  return { last, logits: ctx.toFloat(ENDS_IN_PROBABILITIES.has(last.activation) ? last.preActivation : last.output, 'logits') };
}

function outputStep(steps: Step[], last: Step, name: string | undefined, model: string): Step {
  if (name === undefined) return last;
  const step = steps.find((s) => s.layer.name === name);
  if (!step) throw new GraphCompileError(`outputLayer '${name}' is not a layer of model '${model}' (layers: ${steps.map((s) => s.layer.name).join(', ')})`);
  return step;
}

/**
 * The loss, the backward pass and the update groups; returns the trainable variables and slot
 * inits. `replicas` > 0: that many in-graph replicas (see the module comment).
 */
function buildTraining(
  ctx: GraphContext,
  model: ModelLike,
  main: { forward: Forward; last: Step; logits: string; inputShape: number[] },
  options: CompileOptions,
  replicas: number,
) {
  const { g } = ctx;
  const loss = options.loss ?? 'categorical';
  const { last, logits } = main;
  if ((loss === 'binary') !== (last.activation === 'sigmoid') || (loss !== 'binary' && last.activation !== 'softmax')) {
    throw unsupported(last.layer, `a ${loss} loss needs the last layer to end in ${loss === 'binary' ? 'sigmoid' : 'softmax'}, not '${last.activation}'`);
  }
  const classes = sizeOfShape(last.outputShape);
  // `scale` is 1 / (global batch size): replicas' sums then add up to the mean gradient of the whole batch.
  const scale = g.placeholder('scale', 'float', []);
  const trainable = ctx.variables.filter((v) => v.trainable && ctx.owners.get(v.index)?.trainable !== false).map((v) => v.index);
  /** The gradients of one forward's loss, scaled by 1 / (global batch). */
  const backward = (c: GraphContext, f: Forward, head = logitsOf(c, f, model.name)) => {
    const dLogits = buildLoss(g, loss, head.logits, classes);
    const dy = c.compute(g.op('Mul', [dLogits, scale], F32, 'd_logits'));
    return buildBackward(c, f.steps, head.last, dy, new Set(trainable), true);
  };
  const missing = (v: number): never => {
    throw new GraphCompileError(`no gradient reaches weight '${ctx.variables[v]!.name}' of model '${last.layer.name}'`);
  };
  let gradNames: string[];
  let stepStats = ['loss_sum', 'correct'];
  let updates: string[] = [];
  if (replicas === 0) {
    const grads = backward(ctx, main.forward, { last, logits });
    gradNames = trainable.map((v, k) => g.op('Identity', [grads.get(v) ?? missing(v)], F32, `grad/${k}`));
  } else {
    buildLoss(g, loss, logits, classes); // validation's loss_sum and correct, on the moving averages
    const sums = new ReplicaSums(g, replicas, scale);
    const grads = Array.from({ length: replicas }, (_, r) =>
      g.scoped(`r${r}/`, () => {
        const c = { ...ctx, batchStatistics: sums.replica(r) };
        return backward(c, buildForward(c, model, c.compute(g.placeholder('x', 'float', [null, ...main.inputShape]), 'x_compute')));
      }),
    );
    sums.define();
    const addN = (parts: string[], name: string) => g.op('AddN', parts, { ...F32, N: { i: parts.length } }, name);
    // What a replica without rows (present 0: a stand-in row) adds is zeroed; see replica-sums.ts.
    const counted = (t: string, r: number) => g.op('Mul', [t, sums.present[r]!], F32, `${t}/counted`);
    gradNames = trainable.map((v, k) =>
      addN(
        grads.map((m, r) => counted(m.get(v) ?? missing(v), r)),
        `grad/${k}`,
      ),
    );
    stepStats = [
      addN(
        Array.from({ length: replicas }, (_, r) => `r${r}/loss_sum`),
        'train/loss_sum',
      ),
      addN(
        Array.from({ length: replicas }, (_, r) => counted(`r${r}/correct`, r)),
        'train/correct',
      ),
    ];
    updates = sums.updates;
  }
  const optimizer = options.optimizer ?? 'adam';
  const slotsPerVariable = OPTIMIZER_SLOTS[optimizer];
  const slots = buildSlots(g, ctx.variables, trainable, slotsPerVariable);
  buildHyperparameters(g);
  const vars = { handles: ctx.handles, trainable, slots: slots.handles };
  buildUpdates(g, optimizer, vars, gradNames, 'apply_op');
  // The loss and accuracy are read in the same run as the update: make them wait for nothing,
  // but make the update group depend on them so that one run computes both from the same weights.
  g.group('apply', ['apply_op', ...stepStats, ...updates]);
  if (replicas === 0) {
    const fedGrads = trainable.map((v, k) => g.placeholder(`grad_in/${k}`, 'float', ctx.variables[v]!.shape));
    buildUpdates(g, optimizer, vars, fedGrads, 'apply_fed');
  }
  return { trainable, slotInits: slots.inits, slotsPerVariable };
}
