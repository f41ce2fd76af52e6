/**
 * The forward pass of any functional tfjs model (branches, merges, shared inputs, models nested as
 * layers): the model's nodes in topological order, each looked up in the layer-kind table and
 * built into the graph. Inference-mode BatchNormalization directly after a linear convolution
 * whose output nothing else reads is folded into that convolution.
 * @internal
 */
import { activate } from './activations.js';
import type { GraphContext } from './context.js';
import { configuredActivation } from './kinds/activation.js';
import { batchNormAffine } from './kinds/batch-norm.js';
import { kindOf, LAYER_KINDS, type Step } from './kinds/index.js';
import { GraphCompileError, type LayerLike, type NodeLike, requireChannelsLast, type TensorLike, unsupported } from './layers.js';

interface ModelLike extends LayerLike {
  inputs: TensorLike[];
  outputs: TensorLike[];
}

export interface Forward {
  /** Every layer call, in forward order (nested models' layers included). */
  steps: Step[];
  /** The model's output tensors and the steps that produced them. */
  outputs: { tensor: string; step: Step | undefined }[];
}

export function isModel(layer: LayerLike): layer is ModelLike {
  return Array.isArray(layer.inputs) && Array.isArray(layer.outputs) && 'layers' in layer;
}

/** The nodes that compute `model`'s outputs from its inputs, in topological order. */
function topology(model: ModelLike): NodeLike[] {
  const inputs = new Set(model.inputs.map((t) => t.id));
  const order: NodeLike[] = [];
  const seen = new Set<NodeLike>();
  const visit = (t: TensorLike) => {
    if (inputs.has(t.id)) return;
    const node = t.sourceLayer.inboundNodes[t.nodeIndex];
    if (!node) throw new GraphCompileError(`tensor of layer '${t.sourceLayer.name}' has no producing node in model '${model.name}'`);
    if (seen.has(node)) return;
    seen.add(node);
    if (node.inputTensors.length === 0) throw unsupported(t.sourceLayer, `an input of model '${model.name}' that is not among its inputs`);
    for (const input of node.inputTensors) visit(input);
    order.push(node);
  };
  for (const output of model.outputs) visit(output);
  return order;
}

/** Readers of each tensor (the model's outputs count as readers). */
function readers(model: ModelLike, nodes: NodeLike[]): Map<number, number> {
  const count = new Map<number, number>();
  const add = (t: TensorLike) => count.set(t.id, (count.get(t.id) ?? 0) + 1);
  for (const node of nodes) node.inputTensors.forEach(add);
  model.outputs.forEach(add);
  return count;
}

const FOLDS_INTO = new Set(['Conv2D', 'DepthwiseConv2D']);

/** BatchNormalization nodes to fold, keyed by the convolution node they fold into. */
function planFolds(ctx: GraphContext, model: ModelLike, nodes: NodeLike[]): Map<NodeLike, NodeLike> {
  const folds = new Map<NodeLike, NodeLike>();
  const count = readers(model, nodes);
  for (const node of nodes) {
    const bn = node.outputTensors[0]!.sourceLayer;
    if (bn.getClassName() !== 'BatchNormalization' || node.inputTensors.length !== 1) continue;
    if (ctx.train) continue;
    const input = node.inputTensors[0]!;
    const conv = input.sourceLayer;
    const producer = conv.inboundNodes[input.nodeIndex];
    const linear = ((conv.getConfig().activation as string | undefined) ?? 'linear') === 'linear';
    if (producer && FOLDS_INTO.has(conv.getClassName()) && linear && count.get(input.id) === 1) folds.set(producer, node);
  }
  return folds;
}

function newStep(layer: LayerLike, node: NodeLike, inputs: { tensor: string; step: Step | undefined }[]): Step {
  return {
    layer,
    kind: layer.getClassName(),
    config: layer.getConfig(),
    inputs: inputs.map((i) => i.tensor),
    sources: inputs.map((i) => i.step),
    inputShapes: node.inputTensors.map((t) => [...t.shape]),
    outputShape: [...node.outputTensors[0]!.shape],
    preActivation: '',
    output: '',
    activation: 'linear',
    params: {},
    attrs: {},
    saved: {},
  };
}

/** Builds one layer call: its kind's forward, then its activation. */
function buildStep(ctx: GraphContext, step: Step): void {
  const kind = kindOf(step.kind);
  if (!kind) throw unsupported(step.layer, `no graph translation (the graph engine compiles ${Object.keys(LAYER_KINDS).join(', ')})`);
  if (step.outputShape.length === 4 || step.inputShapes.some((s) => s.length === 4)) requireChannelsLast(step.layer);
  if (kind.activates) step.activation = configuredActivation(step.layer, step.config);
  step.preActivation = kind.forward(ctx, step);
  step.output = activate(ctx.g, ctx.CT, step.activation, step.preActivation, step.layer.name, ctx.scalar);
}

/** Compiles `model`'s nodes given graph tensors for its inputs; appends to `steps`. */
export function walkModel(ctx: GraphContext, model: ModelLike, inputs: Forward['outputs'], steps: Step[]): Forward['outputs'] {
  if (inputs.length !== model.inputs.length) throw new GraphCompileError(`model '${model.name}' takes ${model.inputs.length} inputs, given ${inputs.length}`);
  const values = new Map<number, { tensor: string; step: Step | undefined }>();
  for (const [i, t] of model.inputs.entries()) {
    const given = inputs[i]!.step?.outputShape.length;
    if (given !== undefined && given !== t.shape.length)
      throw new GraphCompileError(`model '${model.name}' takes a rank-${t.shape.length} input, given a rank-${given} tensor (flatten it first)`);
    values.set(t.id, inputs[i]!);
  }
  const nodes = topology(model);
  const folds = planFolds(ctx, model, nodes);
  const foldedBy = new Map<NodeLike, Step>();
  for (const node of nodes) {
    const layer = node.outputTensors[0]!.sourceLayer;
    const ins = node.inputTensors.map((t) => values.get(t.id)!);
    if (isModel(layer)) {
      for (const [i, out] of walkModel(ctx, layer, ins, steps).entries()) values.set(node.outputTensors[i]!.id, out);
      continue;
    }
    if (node.outputTensors.length !== 1) throw unsupported(layer, `${node.outputTensors.length} outputs (one per layer)`);
    const step = newStep(layer, node, ins);
    const bn = folds.get(node);
    if (bn) {
      const bnStep = newStep(bn.outputTensors[0]!.sourceLayer, bn, []);
      step.fold = batchNormAffine(ctx, bnStep.layer, bnStep.params);
      foldedBy.set(bn, step);
    }
    if (foldedBy.has(node)) step.folded = true;
    buildStep(ctx, step);
    steps.push(step);
    values.set(node.outputTensors[0]!.id, { tensor: step.output, step });
  }
  return model.outputs.map((t) => values.get(t.id)!);
}

/** The forward pass of `model` from the graph tensor `input`. */
export function buildForward(ctx: GraphContext, model: ModelLike, input: string): Forward {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new GraphCompileError(
      `model '${model.name}' has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the graph engine compiles single-input, single-output models`,
    );
  }
  const steps: Step[] = [];
  const outputs = walkModel(ctx, model, [{ tensor: input, step: undefined }], steps);
  return { steps, outputs };
}

export type { ModelLike };
