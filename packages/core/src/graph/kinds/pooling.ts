/** MaxPooling2D, AveragePooling2D and their global forms. @internal */
import { pairOf, unsupported } from '../layers.js';
import type { LayerKind, Step } from './kind.js';

function poolAttrs(step: Step) {
  const { layer, config } = step;
  const [ph, pw] = pairOf(config.poolSize ?? 2, 'poolSize', layer.name);
  const [sh, sw] = pairOf(config.strides ?? config.poolSize ?? 2, 'strides', layer.name);
  const padding = String(config.padding ?? 'valid').toUpperCase();
  if (padding !== 'VALID' && padding !== 'SAME') throw unsupported(layer, `padding '${config.padding}'`);
  return { ksize: { ints: [1, ph, pw, 1] }, strides: { ints: [1, sh, sw, 1] }, padding: { s: padding }, data_format: { s: 'NHWC' } };
}

export const MaxPooling2D: LayerKind = {
  forward(ctx, step) {
    step.attrs = poolAttrs(step);
    return ctx.g.op('MaxPool', [step.inputs[0]!], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/pool`);
  },
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    return [ctx.g.op('MaxPoolGrad', [step.inputs[0]!, step.preActivation, dz], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/d_input`)];
  },
};

export const AveragePooling2D: LayerKind = {
  forward(ctx, step) {
    step.attrs = poolAttrs(step);
    return ctx.g.op('AvgPool', [step.inputs[0]!], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/pool`);
  },
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    const name = step.layer.name;
    return [ctx.g.op('AvgPoolGrad', [ctx.shape(step.inputs[0]!, `${name}/in_shape`), dz], { ...ctx.TC, ...step.attrs }, `${name}/d_input`)];
  },
};

/** Mean or Max over height and width; `keepDims` keeps them as 1 × 1 (Keras 3's keepdims). */
function globalPool(op: 'Mean' | 'Max'): LayerKind['forward'] {
  return (ctx, step) =>
    ctx.g.op(
      op,
      [step.inputs[0]!, ctx.g.constInt(`${step.layer.name}/axes`, [1, 2])],
      { ...ctx.TC, Tidx: { type: 'int32' }, keep_dims: { b: step.config.keepDims === true || step.config.keepdims === true } },
      `${step.layer.name}/${op.toLowerCase()}`,
    );
}

export const GlobalAveragePooling2D: LayerKind = {
  forward: globalPool('Mean'),
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    const { g, TC } = ctx;
    const name = step.layer.name;
    const [, hh, ww, cc] = step.inputShapes[0]!;
    const spread = g.op('Reshape', [g.op('Mul', [dz, ctx.scalar(`${name}/area`, 1 / (hh! * ww!))], TC), g.constInt(`${name}/d_shape`, [-1, 1, 1, cc!])], {
      ...TC,
      Tshape: { type: 'int32' },
    });
    return [g.op('BroadcastTo', [spread, ctx.shape(step.inputs[0]!, `${name}/in_shape`)], { ...TC, Tidx: { type: 'int32' } }, `${name}/d_input`)];
  },
};

/**
 * The gradient goes to each channel's maximum, shared equally among ties (TensorFlow's reduce_max
 * gradient; tfjs's takes ties alike, and ties are rare in float activations).
 */
export const GlobalMaxPooling2D: LayerKind = {
  forward: globalPool('Max'),
  backward(ctx, step, dz, wants) {
    if (!wants[0]) return [];
    const { g, TC } = ctx;
    const name = step.layer.name;
    const [, , , cc] = step.inputShapes[0]!;
    const column = (t: string, label: string) =>
      g.op('Reshape', [t, g.constInt(`${name}/${label}_shape`, [-1, 1, 1, cc!])], { ...TC, Tshape: { type: 'int32' } });
    const x = step.inputs[0]!;
    const mask = g.op('Cast', [g.op('Equal', [x, column(step.output, 'max')], { ...TC, incompatible_shape_error: { b: true } })], {
      SrcT: { type: 'bool' },
      DstT: TC.T!,
      Truncate: { b: false },
    });
    const ties = g.op('Sum', [mask, g.constInt(`${name}/hw_axes`, [1, 2])], { ...TC, Tidx: { type: 'int32' }, keep_dims: { b: true } }, `${name}/ties`);
    return [g.op('Mul', [mask, g.op('RealDiv', [column(dz, 'd'), ties], TC)], TC, `${name}/d_input`)];
  },
};
