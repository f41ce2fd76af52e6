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
 * A layer the table does not know, or one without a gradient on a path that training needs, is
 * refused by name (GraphCompileError), and the eager engine runs the model instead.
 * @internal
 */
import { F32, type LayersModel } from '@featherstack/tensorflow';
import { buildBackward } from './backward.js';
import { createContext, type GraphContext, type GraphVariable, type Precision } from './context.js';
import { buildForward, type ModelLike } from './forward.js';
import type { Step } from './kinds/index.js';
import { GraphCompileError, sizeOfShape, unsupported } from './layers.js';
import { buildLoss, type LossKind } from './loss.js';
import { buildHyperparameters, buildSlots, buildUpdates, OPTIMIZER_SLOTS, type OptimizerKind } from './optimizers.js';

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
  const forward = buildForward(ctx, model as unknown as ModelLike, ctx.compute(x, 'x_compute'));
  const last = forward.outputs[0]!.step;
  if (!last) throw new GraphCompileError(`model '${model.name}' has no layers to compile`);
  const endsInProbabilities = ENDS_IN_PROBABILITIES.has(last.activation);
  // Loss and probabilities in float32 whatever the compute type.
  const logits = ctx.toFloat(endsInProbabilities ? last.preActivation : last.output, 'logits');
  const probabilities = endsInProbabilities ? g.op(last.activation === 'softmax' ? 'Softmax' : 'Sigmoid', [logits], F32, 'probabilities') : logits;
  const target = outputStep(forward.steps, last, options.outputLayer, model.name);
  g.op('Identity', [target === last ? probabilities : ctx.toFloat(target.output)], F32, 'output');
  const inits = ctx.variables.map((v) =>
    g.op('AssignVariableOp', [ctx.handles[v.index]!, g.placeholder(`init/${v.index}`, 'float', v.shape)], { dtype: { type: 'float' } }, `assign/${v.index}`),
  );
  const training = options.train ? buildTraining(ctx, forward.steps, last, logits, options) : { trainable: [], slotInits: [], slotsPerVariable: 0 };
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
  };
}

function outputStep(steps: Step[], last: Step, name: string | undefined, model: string): Step {
  if (name === undefined) return last;
  const step = steps.find((s) => s.layer.name === name);
  if (!step) throw new GraphCompileError(`outputLayer '${name}' is not a layer of model '${model}' (layers: ${steps.map((s) => s.layer.name).join(', ')})`);
  return step;
}

/** The loss, the backward pass and both update groups; returns the trainable variables and slot inits. */
function buildTraining(ctx: GraphContext, steps: Step[], last: Step, logits: string, options: CompileOptions) {
  const { g } = ctx;
  const loss = options.loss ?? 'categorical';
  if ((loss === 'binary') !== (last.activation === 'sigmoid') || (loss !== 'binary' && last.activation !== 'softmax')) {
    throw unsupported(last.layer, `a ${loss} loss needs the last layer to end in ${loss === 'binary' ? 'sigmoid' : 'softmax'}, not '${last.activation}'`);
  }
  const dLogits = buildLoss(g, loss, logits, sizeOfShape(last.outputShape));
  // `scale` is 1 / (global batch size): replicas' sums then add up to the mean gradient of the whole batch.
  const scale = g.placeholder('scale', 'float', []);
  const dy = ctx.compute(g.op('Mul', [dLogits, scale], F32, 'd_logits'));
  const trainable = ctx.variables.filter((v) => v.trainable && ctx.owners.get(v.index)?.trainable !== false).map((v) => v.index);
  const grads = buildBackward(ctx, steps, last, dy, new Set(trainable), true);
  const gradNames = trainable.map((v, k) => {
    const grad = grads.get(v);
    if (!grad) throw new GraphCompileError(`no gradient reaches weight '${ctx.variables[v]!.name}' of model '${last.layer.name}'`);
    return g.op('Identity', [grad], F32, `grad/${k}`);
  });
  const fedGrads = trainable.map((v, k) => g.placeholder(`grad_in/${k}`, 'float', ctx.variables[v]!.shape));
  const optimizer = options.optimizer ?? 'adam';
  const slotsPerVariable = OPTIMIZER_SLOTS[optimizer];
  const slots = buildSlots(g, ctx.variables, trainable, slotsPerVariable);
  buildHyperparameters(g);
  const vars = { handles: ctx.handles, trainable, slots: slots.handles };
  buildUpdates(g, optimizer, vars, gradNames, 'apply_op');
  // The loss and accuracy are read in the same run as the update: make them wait for nothing,
  // but make the update group depend on them so that one run computes both from the same weights.
  g.group('apply', ['apply_op', 'loss_sum', 'correct']);
  buildUpdates(g, optimizer, vars, fedGrads, 'apply_fed');
  return { trainable, slotInits: slots.inits, slotsPerVariable };
}
