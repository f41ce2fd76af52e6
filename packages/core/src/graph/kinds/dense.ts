/** Dense: a matrix product and a bias on rank-2 inputs. @internal */
import { unsupported, weightNamed } from '../layers.js';
import type { LayerKind } from './kind.js';

export const Dense: LayerKind = {
  activates: true,
  forward(ctx, step) {
    const { layer } = step;
    const rank = step.inputShapes[0]!.length;
    if (rank !== 2) throw unsupported(layer, `a Dense layer on a rank-${rank} input (flatten first)`);
    step.params.kernel = ctx.weightIndex(layer, weightNamed(layer, 'kernel')!);
    const biasW = step.config.useBias === false ? undefined : weightNamed(layer, 'bias');
    if (biasW) step.params.bias = ctx.weightIndex(layer, biasW);
    const z = ctx.g.op(
      'MatMul',
      [step.inputs[0]!, ctx.weight(step.params.kernel)],
      { ...ctx.TC, transpose_a: { b: false }, transpose_b: { b: false } },
      `${layer.name}/matmul`,
    );
    return biasW ? ctx.g.op('BiasAdd', [z, ctx.weight(step.params.bias!)], { ...ctx.TC, data_format: { s: 'NHWC' } }, `${layer.name}/bias`) : z;
  },
  backward(ctx, step, dz, wants) {
    const { g, TC } = ctx;
    const name = step.layer.name;
    const kernel = step.params.kernel!;
    if (ctx.trainable(kernel))
      ctx.setGrad(
        kernel,
        ctx.toFloat(g.op('MatMul', [step.inputs[0]!, dz], { ...TC, transpose_a: { b: true }, transpose_b: { b: false } }, `${name}/d_kernel`)),
      );
    if (step.params.bias !== undefined && ctx.trainable(step.params.bias))
      ctx.setGrad(step.params.bias, ctx.toFloat(g.op('BiasAddGrad', [dz], { ...TC, data_format: { s: 'NHWC' } }, `${name}/d_bias`)));
    if (!wants[0]) return [];
    return [g.op('MatMul', [dz, ctx.weight(kernel)], { ...TC, transpose_a: { b: false }, transpose_b: { b: true } }, `${name}/d_input`)];
  },
};
