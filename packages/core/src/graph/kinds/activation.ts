/**
 * Layers that are an activation: Activation, ReLU, LeakyReLU, ELU and Softmax. Each sets the step's
 * activation and passes its input on; the compiler applies the activation (and its gradient), so
 * that a final softmax or sigmoid becomes the loss's logits whatever layer spelled it.
 * @internal
 */
import { hasActivation } from '../activations.js';
import { unsupported } from '../layers.js';
import type { LayerKind } from './kind.js';

const passThrough: LayerKind['backward'] = (_ctx, _step, dz, wants) => (wants[0] ? [dz] : []);

export const Activation: LayerKind = {
  activates: true,
  forward: (_ctx, step) => step.inputs[0]!,
  backward: passThrough,
};

/** Keras 3's relu(x, negative_slope, max_value, threshold), op for op (keras/src/activations). */
function kerasRelu(
  ctx: Parameters<LayerKind['forward']>[0],
  step: Parameters<LayerKind['forward']>[1],
  max: number | null,
  slope: number,
  threshold: number,
): string {
  const { g, TC } = ctx;
  const name = step.layer.name;
  const x = step.inputs[0]!;
  if (slope !== 0 && max === null && threshold === 0) return g.op('LeakyRelu', [x], { ...TC, alpha: { f: slope } }, `${name}/leaky_relu`);
  const negative =
    slope === 0
      ? undefined
      : g.op('Relu', [threshold !== 0 ? g.op('AddV2', [g.op('Neg', [x], TC), ctx.scalar(`${name}/threshold`, threshold)], TC) : g.op('Neg', [x], TC)], TC);
  let y: string;
  if (threshold !== 0) {
    const above = g.op('Greater', [x, ctx.scalar(`${name}/above`, threshold)], TC);
    y = g.op('Mul', [x, g.op('Cast', [above], { SrcT: { type: 'bool' }, DstT: { type: ctx.CT }, Truncate: { b: false } })], TC);
  } else y = g.op('Relu', [x], TC);
  if (max !== null) y = g.op('Minimum', [g.op('Maximum', [y, ctx.scalar(`${name}/zero`, 0)], TC), ctx.scalar(`${name}/max`, max)], TC);
  return negative ? g.op('Sub', [y, g.op('Mul', [negative, ctx.scalar(`${name}/slope`, slope)], TC)], TC, `${name}/relu`) : y;
}

export const ReLU: LayerKind = {
  forward(ctx, step) {
    const max = step.config.maxValue;
    const slope = Number(step.config.negativeSlope ?? 0);
    const threshold = Number(step.config.threshold ?? 0);
    if (slope === 0 && threshold === 0 && (max === null || max === undefined)) step.activation = 'relu';
    else if (slope === 0 && threshold === 0 && max === 6) step.activation = 'relu6';
    else {
      step.saved.general = 'yes';
      return kerasRelu(ctx, step, max === null || max === undefined ? null : Number(max), slope, threshold);
    }
    return step.inputs[0]!;
  },
  backward(_ctx, step, dz, wants) {
    if (step.saved.general) throw unsupported(step.layer, 'a ReLU with maxValue other than 6, a negative slope or a threshold has no graph gradient yet');
    return wants[0] ? [dz] : [];
  },
};

export const ELU: LayerKind = {
  forward(_ctx, step) {
    const alpha = Number(step.config.alpha ?? 1);
    if (alpha !== 1) throw unsupported(step.layer, `alpha ${alpha} (only 1)`);
    step.activation = 'elu';
    return step.inputs[0]!;
  },
  backward: passThrough,
};

export const LeakyReLU: LayerKind = {
  forward(ctx, step) {
    const alpha = Number(step.config.alpha ?? step.config.negativeSlope ?? 0.3);
    step.attrs = { alpha: { f: alpha } };
    return ctx.g.op('LeakyRelu', [step.inputs[0]!], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/leaky_relu`);
  },
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    return [ctx.g.op('LeakyReluGrad', [dz, step.inputs[0]!], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/d_input`)];
  },
};

export const Softmax: LayerKind = {
  forward(_ctx, step) {
    const axis = step.config.axis ?? -1;
    const rank = step.inputShapes[0]!.length;
    if (axis !== -1 && axis !== rank - 1 && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === rank - 1)))
      throw unsupported(step.layer, `axis ${JSON.stringify(axis)} (only the last)`);
    step.activation = 'softmax';
    return step.inputs[0]!;
  },
  backward: passThrough,
};

/** The activation a layer's config names, checked against the table. */
export function configuredActivation(layer: { name: string; getClassName(): string }, config: Record<string, unknown>): string {
  const activation = (config.activation as string | undefined) ?? 'linear';
  if (!hasActivation(activation)) throw unsupported(layer as never, `activation '${activation}' has no graph translation`);
  return activation;
}
