/**
 * What the graph compiler reads of a tfjs layer, and the small helpers every layer kind shares.
 * @internal
 */

/** A model the graph engine cannot compile; the message names the layer and why. */
export class GraphCompileError extends Error {
  override readonly name = 'GraphCompileError';
  readonly code = 'FEATHERSTACK_GRAPH_UNSUPPORTED';
}

/** A tfjs SymbolicTensor, as far as the compiler reads it. */
export interface TensorLike {
  id: number;
  shape: (number | null)[];
  sourceLayer: LayerLike;
  nodeIndex: number;
  tensorIndex: number;
}

/** A call of a layer on symbolic tensors (tfjs's Node). */
export interface NodeLike {
  inputTensors: TensorLike[];
  outputTensors: TensorLike[];
  inboundLayers: LayerLike[];
}

export interface WeightLike {
  name: string;
  originalName?: string;
  shape: number[];
  trainable: boolean;
}

export interface LayerLike {
  name: string;
  trainable: boolean;
  weights: WeightLike[];
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: NodeLike[];
  outputShape: unknown;
  /** Present on a model used as a layer. */
  inputs?: TensorLike[];
  outputs?: TensorLike[];
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

/** Elements per sample of a shape [batch, ...dims]. */
export function sizeOfShape(shape: readonly (number | null)[]): number {
  return shape.slice(1).reduce<number>((a, b) => a * (b ?? Number.NaN), 1);
}

/** Elements per sample of a layer's (first) output. */
export function sizeOf(layer: LayerLike): number {
  const shape = layer.outputShape;
  return sizeOfShape((Array.isArray(shape) && Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[]);
}

/** The named weight of a layer (by its last path segment: 'kernel', 'bias', 'gamma', …). */
export function weightNamed(layer: LayerLike, name: string): WeightLike | undefined {
  return layer.weights.find((w) => (w.originalName ?? w.name).split('/').at(-1)?.replace(/:\d+$/, '') === name);
}

/** A layer's data format must be channels-last (NHWC), the layout the whole graph uses. */
export function requireChannelsLast(layer: LayerLike): void {
  const format = layer.getConfig().dataFormat;
  if (format !== undefined && format !== 'channelsLast') throw unsupported(layer, `dataFormat '${format}' (only channelsLast)`);
}
