/**
 * The layers the graph compiler reads, and their pieces of graph that are not per-step logic:
 * chain checks, activations and their gradients.
 * @internal
 */
import type { DType, GraphBuilder, LayersModel } from '@featherstack/tensorflow';

/** A model the graph engine cannot compile; the message names the layer and why. */
export class GraphCompileError extends Error {
  override readonly name = 'GraphCompileError';
  readonly code = 'FEATHERSTACK_GRAPH_UNSUPPORTED';
}

export const ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'tanh']);

export interface LayerLike {
  name: string;
  trainable: boolean;
  weights: { name: string; shape: number[]; trainable: boolean }[];
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: { inboundLayers: LayerLike[] }[];
  outputShape: unknown;
}

/** What the forward pass keeps of a layer for its gradient. */
export interface Step {
  layer: LayerLike;
  kind: string;
  input: string;
  /** Pre-activation output (what the activation's gradient needs besides the output). */
  preActivation: string;
  output: string;
  activation: string;
  params: { kernel?: number; bias?: number };
  attrs: Record<string, unknown>;
  mask?: string;
}

export function pairOf(value: unknown, name: string, layer: string): [number, number] {
  const v = Array.isArray(value) ? value : [value, value];
  if (v.length !== 2 || v.some((x) => !Number.isInteger(x)))
    throw new GraphCompileError(`layer '${layer}': ${name} ${JSON.stringify(value)} is not a pair of integers`);
  return v as [number, number];
}

export function unsupported(layer: LayerLike, why: string): GraphCompileError {
  return new GraphCompileError(
    `layer '${layer.name}' (${layer.getClassName()}): ${why}; the graph engine cannot train this model (train it with engine: 'eager' and replicas: 1)`,
  );
}

/** The layers of `model` as a chain from its input, or a GraphCompileError naming the first branch. */
export function chainOf(model: LayersModel): LayerLike[] {
  const layers = model.layers as unknown as LayerLike[];
  if ((model.inputs?.length ?? 0) !== 1 || (model.outputs?.length ?? 0) !== 1) {
    throw new GraphCompileError(
      `model '${model.name}' has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the graph engine trains single-input, single-output chains`,
    );
  }
  for (let i = 1; i < layers.length; i++) {
    const inbound = layers[i]!.inboundNodes.flatMap((n) => n.inboundLayers);
    if (inbound.length !== 1 || inbound[0] !== layers[i - 1]) {
      throw unsupported(
        layers[i]!,
        `its input is not the layer before it (${inbound.map((l) => l.name).join(', ') || 'none'}): only sequential chains compile`,
      );
    }
  }
  return layers;
}

export function sizeOf(layer: LayerLike): number {
  const shape = layer.outputShape;
  return ((Array.isArray(shape) && Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[])
    .slice(1)
    .reduce<number>((a, b) => a * (b ?? Number.NaN), 1);
}

export function layerOfVariable(layers: LayerLike[], weights: unknown[], index: number): LayerLike | undefined {
  return layers.find((l) => l.weights.some((w) => w === weights[index]));
}

export function activate(g: GraphBuilder, type: DType, activation: string, z: string, name: string): string {
  const TC = { T: { type } };
  switch (activation) {
    case 'linear':
      return z;
    case 'relu':
      return g.op('Relu', [z], TC, `${name}/relu`);
    case 'relu6':
      return g.op('Relu6', [z], TC, `${name}/relu6`);
    case 'elu':
      return g.op('Elu', [z], TC, `${name}/elu`);
    case 'sigmoid':
      return g.op('Sigmoid', [z], TC, `${name}/sigmoid`);
    default:
      return g.op('Tanh', [z], TC, `${name}/tanh`);
  }
}

export function activationGrad(g: GraphBuilder, type: DType, activation: string, dy: string, y: string, z: string, name: string): string {
  const TC = { T: { type } };
  switch (activation) {
    case 'linear':
      return dy;
    case 'relu':
      return g.op('ReluGrad', [dy, y], TC, `${name}/d_relu`);
    case 'relu6':
      return g.op('Relu6Grad', [dy, z], TC, `${name}/d_relu6`);
    case 'elu':
      return g.op('EluGrad', [dy, y], TC, `${name}/d_elu`);
    case 'sigmoid':
      return g.op('SigmoidGrad', [y, dy], TC, `${name}/d_sigmoid`);
    default:
      return g.op('TanhGrad', [y, dy], TC, `${name}/d_tanh`);
  }
}
