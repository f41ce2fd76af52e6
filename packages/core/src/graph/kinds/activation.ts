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

export const ReLU: LayerKind = {
  forward(ctx, step) {
    const max = step.config.maxValue;
    const slope = Number(step.config.negativeSlope ?? 0);
    const threshold = Number(step.config.threshold ?? 0);
    if (slope !== 0 || threshold !== 0) throw unsupported(step.layer, `negativeSlope ${slope} / threshold ${threshold} (only 0)`);
    if (max === null || max === undefined) step.activation = 'relu';
    else if (max === 6) step.activation = 'relu6';
    else {
      const relu = ctx.g.op('Relu', [step.inputs[0]!], ctx.TC, `${step.layer.name}/relu`);
      step.saved.clipped = 'yes';
      return ctx.g.op('Minimum', [relu, ctx.scalar(`${step.layer.name}/max`, Number(max))], ctx.TC, `${step.layer.name}/clip`);
    }
    return step.inputs[0]!;
  },
  backward(_ctx, step, dz, wants) {
    if (step.saved.clipped) throw unsupported(step.layer, `maxValue ${step.config.maxValue} has no graph gradient yet`);
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
