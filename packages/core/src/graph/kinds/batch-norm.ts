/**
 * BatchNormalization in inference mode: y = x · scale + shift with scale = γ / √(var + ε) and
 * shift = β − mean · scale, computed in float32 from the variables (as Keras's inference does).
 * Folded into a producing convolution where the compiler can (see compile's fold plan); its
 * training mode (batch statistics, synchronised moving averages) is not compiled yet.
 * @internal
 */
import { F32 } from '@featherstack/tensorflow';
import type { GraphContext } from '../context.js';
import { type LayerLike, unsupported, weightNamed } from '../layers.js';
import type { Fold, LayerKind, Step } from './kind.js';

/** The float32 per-channel scale and shift of an inference-mode BatchNormalization. */
export function batchNormAffine(ctx: GraphContext, layer: LayerLike, params: Record<string, number> = {}): Fold {
  const config = layer.getConfig();
  const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
  const rank = ((layer.inboundNodes[0]?.inputTensors[0]?.shape ?? []) as unknown[]).length;
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== rank - 1)) throw unsupported(layer, `axis ${JSON.stringify(config.axis)} (only the last)`);
  const { g } = ctx;
  const read = (role: string) => {
    const w = weightNamed(layer, role);
    if (!w) return undefined;
    params[role] = ctx.weightIndex(layer, w);
    return ctx.reads[params[role]!]!;
  };
  const mean = read('moving_mean');
  const variance = read('moving_variance');
  if (!mean || !variance) throw unsupported(layer, 'no moving_mean and moving_variance weights');
  const gamma = read('gamma');
  const beta = read('beta');
  const epsilon = g.constFloat(`${layer.name}/epsilon`, [Number(config.epsilon ?? 1e-3)], []);
  let scale = g.op('Rsqrt', [g.op('AddV2', [variance, epsilon], F32)], F32, `${layer.name}/inv_std`);
  if (gamma) scale = g.op('Mul', [scale, gamma], F32, `${layer.name}/scale`);
  const centred = g.op('Mul', [mean, scale], F32);
  const shift = beta ? g.op('Sub', [beta, centred], F32, `${layer.name}/shift`) : g.op('Neg', [centred], F32, `${layer.name}/shift`);
  return { scale, shift };
}

/** Whether this BatchNormalization runs as Keras runs a frozen one: inference mode. */
function inferenceMode(ctx: GraphContext, step: Step): boolean {
  return !ctx.train || step.layer.trainable === false;
}

export const BatchNormalization: LayerKind = {
  forward(ctx, step) {
    if (!inferenceMode(ctx, step))
      throw unsupported(
        step.layer,
        'its moving mean and variance are state that replicas would each update from their own slice; the graph engine does not train it yet',
      );
    if (step.folded) return step.inputs[0]!;
    const { scale, shift } = batchNormAffine(ctx, step.layer, step.params);
    step.saved.scale = ctx.compute(scale);
    const scaled = ctx.g.op('Mul', [step.inputs[0]!, step.saved.scale], ctx.TC, `${step.layer.name}/mul`);
    return ctx.g.op('AddV2', [scaled, ctx.compute(shift)], ctx.TC, `${step.layer.name}/add`);
  },
  // Frozen: a per-channel scale. Its own weights never train (inferenceMode holds only when frozen).
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    if (step.folded) return [dz];
    return [ctx.g.op('Mul', [dz, step.saved.scale!], ctx.TC, `${step.layer.name}/d_input`)];
  },
};
