/** Dropout: inverted dropout while training, the identity otherwise. @internal */
import { F32 } from '@featherstack/tensorflow';
import { unsupported } from '../layers.js';
import type { LayerKind } from './kind.js';

export const Dropout: LayerKind = {
  forward(ctx, step) {
    const { g, TC } = ctx;
    const { layer, config } = step;
    const rate = Number(config.rate ?? 0);
    if (!ctx.train || rate <= 0) return step.inputs[0]!;
    if (config.noiseShape || config.noise_shape) throw unsupported(layer, 'a noiseShape (in training)');
    // Inverted dropout as tfjs applies it in training: keep with probability 1 − rate, scale by 1/(1 − rate).
    const h = step.inputs[0]!;
    const uniform = g.op(
      'RandomUniform',
      [ctx.shape(h, `${layer.name}/shape`)],
      { T: { type: 'int32' }, dtype: { type: 'float' }, seed: { i: ctx.seed }, seed2: { i: ctx.nextSeed() } },
      `${layer.name}/uniform`,
    );
    const keep = g.op('Floor', [g.op('AddV2', [uniform, g.constFloat(`${layer.name}/keep`, [1 - rate], [])], F32)], F32, `${layer.name}/keep_mask`);
    const mask = g.op('Mul', [keep, g.constFloat(`${layer.name}/scale`, [1 / (1 - rate)], [])], F32, `${layer.name}/mask`);
    // 1 + training · (mask − 1): the mask in a training step, ones when validation feeds training 0.
    const one = g.constFloat(`${layer.name}/one`, [1], []);
    const applied = g.op('AddV2', [one, g.op('Mul', [ctx.trainingFlag(), g.op('Sub', [mask, one], F32)], F32)], F32, `${layer.name}/applied_mask`);
    step.saved.mask = ctx.compute(applied);
    return g.op('Mul', [h, step.saved.mask], TC, `${layer.name}/drop`);
  },
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    return [step.saved.mask ? ctx.g.op('Mul', [dz, step.saved.mask], ctx.TC, `${step.layer.name}/d_input`) : dz];
  },
};

/** Layers that are the identity at inference (GaussianNoise, GaussianDropout, …). */
export const InferenceIdentity: LayerKind = {
  forward(ctx, step) {
    if (ctx.train) throw unsupported(step.layer, 'it adds random noise in training, which the graph engine does not draw');
    return step.inputs[0]!;
  },
};
