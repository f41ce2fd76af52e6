/**
 * What every layer kind builds with: the graph, the compute type, the model's variables read in it,
 * and the shape and constant helpers. One context per compiled graph.
 * @internal
 */
import { DEFAULT_SEED } from '@featherstack/common';
import { type Attr, type DType, F32, GraphBuilder } from '@featherstack/tensorflow';
import { GraphCompileError, type LayerLike, type WeightLike } from './layers.js';

export const PRECISIONS = ['float32', 'mixed-bfloat16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface GraphVariable {
  /** Index in model.getWeights(). */
  index: number;
  name: string;
  shape: number[];
  size: number;
  trainable: boolean;
}

/**
 * Where a training BatchNormalization of one in-graph replica (see compile.ts) gets the statistics
 * of the whole global batch: the sum over replicas of a per-replica tensor, read by every replica.
 */
export interface BatchStatistics {
  /** This replica's index; replica 0 also updates the moving averages, once per step. */
  replica: number;
  /** 1 / (rows of the global batch): the `scale` feed. */
  scale: string;
  /** The node holding the sum over replicas of `local` (each replica gives its own under `key`). */
  sum(key: string, local: string): string;
  /** An op a training step runs once (a moving average's assignment). */
  update(op: string): void;
}

export interface GraphContext {
  readonly g: GraphBuilder;
  /** The type layers compute in (float, or bfloat16 under mixed precision). */
  readonly CT: DType;
  /** `{ T: CT }`, the attribute most ops take. */
  readonly TC: Record<string, Attr>;
  readonly train: boolean;
  readonly seed: number;
  readonly variables: GraphVariable[];
  /** Variable handles and their float32 reads, by variable index. */
  readonly handles: string[];
  readonly reads: string[];
  /** The layer that reads each variable (the owner decides whether it trains). */
  readonly owners: Map<number, LayerLike>;
  /** The index of `w` among the model's weights; the reading layer is recorded as its owner. */
  weightIndex(layer: LayerLike, w: WeightLike): number;
  /** Variable `index` read in the compute type (one cast per variable, shared by every reader). */
  weight(index: number): string;
  compute(t: string, name?: string): string;
  toFloat(t: string, name?: string): string;
  cast(t: string, from: DType, to: DType, name?: string): string;
  /** A scalar constant in the compute type. */
  scalar(name: string, value: number): string;
  /** The int32 shape of `t`, a tensor of the compute type (or of `type`). */
  shape(t: string, name: string, type?: DType): string;
  /** A fresh seed2 for a random op (dropout masks). */
  nextSeed(): number;
  /**
   * The float32 scalar `training` (1 unless fed): what a training step runs with, fed 0 by
   * validation, so that layers that act only in training (dropout) score as Keras scores them.
   */
  trainingFlag(): string;
  /**
   * How BatchNormalization layers that train get their statistics: summed over the in-graph
   * replicas, or 'moving' in the evaluation copy of such a graph (validation and predict use the
   * moving averages, as Keras does). Undefined: the graph has no training BatchNormalization.
   */
  readonly batchStatistics?: BatchStatistics | 'moving';
}

export function createContext(model: { name: string; weights: unknown[] }, options: { train: boolean; seed?: number; precision?: Precision }): GraphContext {
  const g = new GraphBuilder();
  const modelWeights = model.weights as WeightLike[];
  const variables: GraphVariable[] = modelWeights.map((w, index) => ({
    index,
    name: w.name,
    shape: [...w.shape],
    size: w.shape.reduce((a, b) => a * b, 1),
    trainable: w.trainable,
  }));
  const handles = variables.map((v) =>
    g.op('VarHandleOp', [], { dtype: { type: 'float' }, shape: { shape: v.shape }, shared_name: { s: `v${v.index}` }, container: { s: '' } }, `var/${v.index}`),
  );
  const reads = variables.map((v) => g.op('ReadVariableOp', [handles[v.index]!], { dtype: { type: 'float' } }, `read/${v.index}`));
  const CT: DType = options.precision === 'mixed-bfloat16' ? 'bfloat16' : 'float';
  const cast = (t: string, from: DType, to: DType, name?: string) =>
    from === to ? t : g.op('Cast', [t], { SrcT: { type: from }, DstT: { type: to }, Truncate: { b: false } }, name);
  const compute = (t: string, name?: string) => cast(t, 'float', CT, name);
  const computed = new Map<number, string>();
  const owners = new Map<number, LayerLike>();
  let seeds = 0;
  let flag: string | undefined;
  return {
    g,
    CT,
    TC: { T: { type: CT } },
    train: options.train,
    seed: options.seed ?? DEFAULT_SEED,
    variables,
    handles,
    reads,
    owners,
    weightIndex(layer, w) {
      const i = modelWeights.indexOf(w);
      if (i < 0) throw new GraphCompileError(`weight '${w.name}' of layer '${layer.name}' is not among model '${model.name}''s weights`);
      owners.set(i, layer);
      return i;
    },
    weight(index) {
      if (!computed.has(index)) computed.set(index, compute(reads[index]!, `compute/${index}`));
      return computed.get(index)!;
    },
    compute,
    toFloat: (t, name) => cast(t, CT, 'float', name),
    cast,
    scalar: (name, value) => compute(g.constFloat(name, [value], [])),
    shape: (t, name, type = CT) => g.op('Shape', [t], { T: { type }, out_type: { type: 'int32' } }, name),
    nextSeed: () => 1000 + seeds++,
    trainingFlag() {
      flag ??= g.op('PlaceholderWithDefault', [g.constFloat('training/default', [1], [])], { dtype: { type: 'float' }, shape: { shape: [] } }, 'training');
      return flag;
    },
  };
}

export { F32 };
