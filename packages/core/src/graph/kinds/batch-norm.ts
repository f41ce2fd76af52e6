/**
 * BatchNormalization, in both of Keras's modes.
 * - Inference (frozen, or any layer when the graph does not train): y = x · scale + shift with
 *   scale = γ / √(var + ε) and shift = β − mean · scale, in float32 from the moving statistics.
 *   Folded into a producing convolution where the compiler can (see forward.ts's fold plan).
 * - Training (a trainable layer in a training graph): the batch's mean and (biased) variance per
 *   channel, over the whole global batch however many replicas share it: each replica sums its
 *   rows, the sums are added across replicas (BatchStatistics), and the moving averages take
 *   moving · momentum + batch · (1 − momentum) once per step, as Keras 3 does. The gradient needs
 *   two more cross-replica sums, Σdy and Σdy·x̂: dx = γ/σ · (dy − (Σdy + x̂ · Σdy·x̂) / M) over the
 *   M values of a channel in the global batch. Statistics are computed in float32 whatever the
 *   compute type.
 * @internal
 */
import { F32 } from '@featherstack/tensorflow';
import type { BatchStatistics, GraphContext } from '../context.js';
import { GraphCompileError, type LayerLike, unsupported, weightNamed } from '../layers.js';
import type { Fold, LayerKind, Step } from './kind.js';

function checkAxis(layer: LayerLike, rank: number): void {
  const config = layer.getConfig();
  const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== rank - 1)) throw unsupported(layer, `axis ${JSON.stringify(config.axis)} (only the last)`);
}

/** The layer's variable `role` read in float32, recording its index in `params`; undefined if the layer has none. */
function readRole(ctx: GraphContext, layer: LayerLike, params: Record<string, number>, role: string): string | undefined {
  const w = weightNamed(layer, role);
  if (!w) return undefined;
  params[role] = ctx.weightIndex(layer, w);
  return ctx.reads[params[role]!]!;
}

/** The float32 per-channel scale and shift of an inference-mode BatchNormalization. */
export function batchNormAffine(ctx: GraphContext, layer: LayerLike, params: Record<string, number> = {}): Fold {
  checkAxis(layer, ((layer.inboundNodes[0]?.inputTensors[0]?.shape ?? []) as unknown[]).length);
  const { g } = ctx;
  const read = (role: string) => readRole(ctx, layer, params, role);
  const mean = read('moving_mean');
  const variance = read('moving_variance');
  if (!mean || !variance) throw unsupported(layer, 'no moving_mean and moving_variance weights');
  const gamma = read('gamma');
  const beta = read('beta');
  const epsilon = g.constFloat(`${layer.name}/epsilon`, [Number(layer.getConfig().epsilon ?? 1e-3)], []);
  let scale = g.op('Rsqrt', [g.op('AddV2', [variance, epsilon], F32)], F32, `${layer.name}/inv_std`);
  if (gamma) scale = g.op('Mul', [scale, gamma], F32, `${layer.name}/scale`);
  const centred = g.op('Mul', [mean, scale], F32);
  const shift = beta ? g.op('Sub', [beta, centred], F32, `${layer.name}/shift`) : g.op('Neg', [centred], F32, `${layer.name}/shift`);
  return { scale, shift };
}

/** Whether `layer` is a BatchNormalization that trains (not frozen) in a training graph. */
export function trainsBatchStatistics(layer: LayerLike): boolean {
  return layer.getClassName() === 'BatchNormalization' && layer.trainable !== false;
}

/** The batch statistics this layer trains with, or undefined where it runs in inference mode (as Keras runs a frozen one). */
function trainingStatistics(ctx: GraphContext, step: Step): BatchStatistics | undefined {
  if (!ctx.train || !trainsBatchStatistics(step.layer) || ctx.batchStatistics === 'moving') return undefined;
  // compileModel builds replicas in-graph whenever a BatchNormalization trains; anything else is a compiler bug.
  if (!ctx.batchStatistics) throw new GraphCompileError(`layer '${step.layer.name}' trains BatchNormalization in a graph built without batch statistics`);
  return ctx.batchStatistics;
}

const sumAttrs = { ...F32, Tidx: { type: 'int32' as const }, keep_dims: { b: false } };

function trainingForward(ctx: GraphContext, step: Step, stats: BatchStatistics): string {
  const { g } = ctx;
  const { name } = step.layer;
  const shape = step.inputShapes[0]!;
  checkAxis(step.layer, shape.length);
  const inner = shape.slice(1, -1);
  if (inner.some((d) => d === null)) throw unsupported(step.layer, `an input of unknown size ${JSON.stringify(shape)} in training mode`);
  const read = (role: string) => readRole(ctx, step.layer, step.params, role);
  const movingMean = read('moving_mean');
  const movingVariance = read('moving_variance');
  if (!movingMean || !movingVariance) throw unsupported(step.layer, 'no moving_mean and moving_variance weights');
  const gamma = read('gamma');
  const beta = read('beta');
  const axes = g.constInt(
    `${name}/axes`,
    Array.from({ length: shape.length - 1 }, (_, i) => i),
  );
  // 1 / M, the values of one channel in the global batch: scale (1 / rows) over the values per row.
  const perRow = (inner as number[]).reduce((a, b) => a * b, 1);
  const perValue = g.op('Mul', [stats.scale, g.constFloat(`${name}/per_row`, [1 / perRow], [])], F32, `${name}/per_value`);
  const sum = (t: string, what: string) => stats.sum(`${name}/${what}`, g.op('Sum', [t, axes], sumAttrs, `${name}/${what}`));
  const x = ctx.toFloat(step.inputs[0]!, `${name}/x`);
  const mean = g.op('Mul', [sum(x, 'sum'), perValue], F32, `${name}/mean`);
  const centred = g.op('Sub', [x, mean], F32, `${name}/centred`);
  const variance = g.op('Mul', [sum(g.op('Square', [centred], F32), 'squares'), perValue], F32, `${name}/variance`);
  const epsilon = g.constFloat(`${name}/epsilon`, [Number(step.config.epsilon ?? 1e-3)], []);
  const invStd = g.op('Rsqrt', [g.op('AddV2', [variance, epsilon], F32)], F32, `${name}/inv_std`);
  const normalised = g.op('Mul', [centred, invStd], F32, `${name}/normalised`);
  step.saved = { normalised, invStd, perValue, axes, ...(gamma ? { gamma } : {}) };
  if (stats.replica === 0) {
    const momentum = Number(step.config.momentum ?? 0.99);
    const average = (moving: string, batch: string, role: string) =>
      g.op(
        'AssignVariableOp',
        [
          ctx.handles[step.params[role]!]!,
          g.op(
            'AddV2',
            [
              g.op('Mul', [moving, g.constFloat(`${name}/momentum`, [momentum], [])], F32),
              g.op('Mul', [batch, g.constFloat(`${name}/decay`, [1 - momentum], [])], F32),
            ],
            F32,
          ),
        ],
        { dtype: { type: 'float' } },
        `${name}/update_${role}`,
      );
    stats.update(average(movingMean, mean, 'moving_mean'));
    stats.update(average(movingVariance, variance, 'moving_variance'));
  }
  let y = gamma ? g.op('Mul', [normalised, gamma], F32, `${name}/scaled`) : normalised;
  if (beta) y = g.op('AddV2', [y, beta], F32, `${name}/shifted`);
  return ctx.compute(y, `${name}/output`);
}

export const BatchNormalization: LayerKind = {
  forward(ctx, step) {
    const stats = trainingStatistics(ctx, step);
    if (stats) return trainingForward(ctx, step, stats);
    if (step.folded) return step.inputs[0]!;
    const { scale, shift } = batchNormAffine(ctx, step.layer, step.params);
    step.saved.scale = ctx.compute(scale);
    const scaled = ctx.g.op('Mul', [step.inputs[0]!, step.saved.scale], ctx.TC, `${step.layer.name}/mul`);
    return ctx.g.op('AddV2', [scaled, ctx.compute(shift)], ctx.TC, `${step.layer.name}/add`);
  },
  backward(ctx, step, dz, wants) {
    const stats = trainingStatistics(ctx, step);
    if (!stats) {
      // Inference mode: a per-channel scale, whose own weights never train (it holds only when frozen).
      if (!wants[0]) return [];
      if (step.folded) return [dz];
      return [ctx.g.op('Mul', [dz, step.saved.scale!], ctx.TC, `${step.layer.name}/d_input`)];
    }
    const { g } = ctx;
    const { name } = step.layer;
    const { normalised, invStd, perValue, axes, gamma } = step.saved;
    const dy = ctx.toFloat(dz, `${name}/dy`);
    // This replica's Σdy and Σdy·x̂: the gradients of β and γ (replicas' gradients are summed later).
    const dBeta = g.op('Sum', [dy, axes!], sumAttrs, `${name}/d_beta`);
    const dGamma = g.op('Sum', [g.op('Mul', [dy, normalised!], F32), axes!], sumAttrs, `${name}/d_gamma`);
    if (step.params.beta !== undefined && ctx.trainable(step.params.beta)) ctx.setGrad(step.params.beta, dBeta);
    if (step.params.gamma !== undefined && ctx.trainable(step.params.gamma)) ctx.setGrad(step.params.gamma, dGamma);
    if (!wants[0]) return [];
    const correction = g.op(
      'Mul',
      [g.op('AddV2', [stats.sum(`${name}/d_beta`, dBeta), g.op('Mul', [normalised!, stats.sum(`${name}/d_gamma`, dGamma)], F32)], F32), perValue!],
      F32,
      `${name}/correction`,
    );
    let dx = g.op('Mul', [g.op('Sub', [dy, correction], F32), invStd!], F32, `${name}/d_normalised`);
    if (gamma) dx = g.op('Mul', [dx, gamma], F32, `${name}/d_x`);
    return [ctx.compute(dx, `${name}/d_input`)];
  },
};
