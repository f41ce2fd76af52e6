/** Flatten, Reshape, and the padding and cropping of height and width. @internal */
import type { GraphContext } from '../context.js';
import { pairOf, sizeOfShape, unsupported } from '../layers.js';
import type { LayerKind, Step } from './kind.js';

function reshapeTo(ctx: GraphContext, t: string, shape: number[], name: string): string {
  return ctx.g.op('Reshape', [t, ctx.g.constInt(`${name}/shape`, shape)], { ...ctx.TC, Tshape: { type: 'int32' } }, name);
}

/** Back to the input's shape: the gradient of any reshape. */
const unreshape: LayerKind['backward'] = (ctx, step, dz, wants) => {
  if (!wants[0]) return [];
  const name = step.layer.name;
  return [ctx.g.op('Reshape', [dz, ctx.shape(step.inputs[0]!, `${name}/in_shape`)], { ...ctx.TC, Tshape: { type: 'int32' } }, `${name}/d_input`)];
};

export const Flatten: LayerKind = {
  forward: (ctx, step) => reshapeTo(ctx, step.inputs[0]!, [-1, sizeOfShape(step.inputShapes[0]!)], `${step.layer.name}/reshape`),
  backward: unreshape,
};

export const Reshape: LayerKind = {
  forward(ctx, step) {
    const target = step.config.targetShape;
    if (!Array.isArray(target) || target.some((d) => !Number.isInteger(d))) throw unsupported(step.layer, `targetShape ${JSON.stringify(target)}`);
    return reshapeTo(ctx, step.inputs[0]!, [-1, ...(target as number[])], `${step.layer.name}/reshape`);
  },
  backward: unreshape,
};

/** [[top, bottom], [left, right]] from a config value: n, [h, w] or [[t, b], [l, r]]. */
function amounts(step: Step, key: string): [[number, number], [number, number]] {
  const value = step.config[key];
  const name = step.layer.name;
  if (Number.isInteger(value))
    return [
      [value as number, value as number],
      [value as number, value as number],
    ];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => Number.isInteger(v))) {
    const [h, w] = value as number[];
    return [
      [h!, h!],
      [w!, w!],
    ];
  }
  if (Array.isArray(value) && value.length === 2) return [pairOf(value[0], key, name), pairOf(value[1], key, name)];
  throw unsupported(step.layer, `${key} ${JSON.stringify(value)}`);
}

function pad(ctx: GraphContext, t: string, [[top, bottom], [left, right]]: [[number, number], [number, number]], name: string): string {
  const paddings = ctx.g.constInt(`${name}/paddings`, [0, 0, top, bottom, left, right, 0, 0], [4, 2]);
  return ctx.g.op('Pad', [t, paddings], { ...ctx.TC, Tpaddings: { type: 'int32' } }, name);
}

function crop(ctx: GraphContext, t: string, shape: (number | null)[], [[top, bottom], [left, right]]: [[number, number], [number, number]], name: string) {
  const [, h, w] = shape;
  const { g } = ctx;
  const begin = g.constInt(`${name}/begin`, [0, top, left, 0]);
  const size = g.constInt(`${name}/size`, [-1, h! - top - bottom, w! - left - right, -1]);
  return g.op('Slice', [t, begin, size], { ...ctx.TC, Index: { type: 'int32' } }, name);
}

export const ZeroPadding2D: LayerKind = {
  forward: (ctx, step) => pad(ctx, step.inputs[0]!, amounts(step, 'padding'), `${step.layer.name}/pad`),
  backward: (ctx, step, dz, wants) => (wants[0] ? [crop(ctx, dz, step.outputShape, amounts(step, 'padding'), `${step.layer.name}/d_input`)] : []),
};

export const Cropping2D: LayerKind = {
  forward: (ctx, step) => crop(ctx, step.inputs[0]!, step.inputShapes[0]!, amounts(step, 'cropping'), `${step.layer.name}/crop`),
  backward: (ctx, step, dz, wants) => (wants[0] ? [pad(ctx, dz, amounts(step, 'cropping'), `${step.layer.name}/d_input`)] : []),
};
