/** The merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate. @internal */
import { unsupported } from '../layers.js';
import type { LayerKind, Step } from './kind.js';

function sameShapes(step: Step): boolean {
  const first = JSON.stringify(step.inputShapes[0]);
  return step.inputShapes.every((s) => JSON.stringify(s) === first);
}

/** A left fold of a broadcasting binary op over the inputs. */
function fold(op: string): LayerKind['forward'] {
  return (ctx, step) =>
    step.inputs.slice(1).reduce((acc, t, i) => ctx.g.op(op, [acc, t], ctx.TC, `${step.layer.name}/${op.toLowerCase()}_${i}`), step.inputs[0]!);
}

export const Add: LayerKind = {
  forward: fold('AddV2'),
  backward(_ctx, step, dz, wants) {
    if (!sameShapes(step)) throw unsupported(step.layer, 'broadcasting inputs have no graph gradient yet');
    return wants.map((w) => (w ? dz : undefined));
  },
};

export const Subtract: LayerKind = {
  forward(ctx, step) {
    if (step.inputs.length !== 2) throw unsupported(step.layer, `${step.inputs.length} inputs (exactly 2)`);
    return ctx.g.op('Sub', [step.inputs[0]!, step.inputs[1]!], ctx.TC, `${step.layer.name}/sub`);
  },
  backward(ctx, step, dz, wants) {
    if (!sameShapes(step)) throw unsupported(step.layer, 'broadcasting inputs have no graph gradient yet');
    return [wants[0] ? dz : undefined, wants[1] ? ctx.g.op('Neg', [dz], ctx.TC, `${step.layer.name}/d_input_1`) : undefined];
  },
};

export const Multiply: LayerKind = {
  forward: fold('Mul'),
  backward(ctx, step, dz, wants) {
    if (step.inputs.length !== 2 || !sameShapes(step)) throw unsupported(step.layer, 'more than two or broadcasting inputs have no graph gradient yet');
    const [a, b] = step.inputs as [string, string];
    return [wants[0] ? ctx.g.op('Mul', [dz, b], ctx.TC) : undefined, wants[1] ? ctx.g.op('Mul', [dz, a], ctx.TC) : undefined];
  },
};

/**
 * Maximum and Minimum of two inputs of one shape: the gradient goes to the input that won (to the
 * first where they tie, as TensorFlow's Maximum gradient gives it to x where x ≥ y).
 */
function selectBackward(op: 'GreaterEqual' | 'LessEqual'): LayerKind['backward'] {
  return (ctx, step, dz, wants) => {
    if (step.inputs.length !== 2 || !sameShapes(step)) throw unsupported(step.layer, 'more than two or broadcasting inputs have no graph gradient yet');
    const { g, TC } = ctx;
    const name = step.layer.name;
    const first = g.op(op, [step.inputs[0]!, step.inputs[1]!], TC, `${name}/first_wins`);
    const zeros = g.op('ZerosLike', [dz], TC, `${name}/zeros`);
    return [
      wants[0] ? g.op('Select', [first, dz, zeros], TC, `${name}/d_input_0`) : undefined,
      wants[1] ? g.op('Select', [first, zeros, dz], TC, `${name}/d_input_1`) : undefined,
    ];
  };
}

export const Maximum: LayerKind = { forward: fold('Maximum'), backward: selectBackward('GreaterEqual') };
export const Minimum: LayerKind = { forward: fold('Minimum'), backward: selectBackward('LessEqual') };

export const Average: LayerKind = {
  forward(ctx, step) {
    const sum = fold('AddV2')(ctx, step);
    return ctx.g.op('Mul', [sum, ctx.scalar(`${step.layer.name}/n`, 1 / step.inputs.length)], ctx.TC, `${step.layer.name}/average`);
  },
  backward(ctx, step, dz, wants) {
    if (!sameShapes(step)) throw unsupported(step.layer, 'broadcasting inputs have no graph gradient yet');
    const share = ctx.g.op('Mul', [dz, ctx.scalar(`${step.layer.name}/d_n`, 1 / step.inputs.length)], ctx.TC, `${step.layer.name}/d_share`);
    return wants.map((w) => (w ? share : undefined));
  },
};

function concatAxis(step: Step): number {
  const rank = step.inputShapes[0]!.length;
  const axis = Number(step.config.axis ?? -1);
  return axis < 0 ? rank + axis : axis;
}

export const Concatenate: LayerKind = {
  forward(ctx, step) {
    const axis = ctx.g.constInt(`${step.layer.name}/axis`, [concatAxis(step)], []);
    return ctx.g.op('ConcatV2', [...step.inputs, axis], { ...ctx.TC, N: { i: step.inputs.length }, Tidx: { type: 'int32' } }, `${step.layer.name}/concat`);
  },
  backward(ctx, step, dz, wants) {
    const axis = concatAxis(step);
    const rank = step.inputShapes[0]!.length;
    let offset = 0;
    return step.inputShapes.map((shape, i) => {
      const begin = Array.from({ length: rank }, (_, d) => (d === axis ? offset : 0));
      const size = Array.from({ length: rank }, (_, d) => (d === axis ? shape[d]! : -1));
      offset += shape[axis]!;
      if (!wants[i]) return undefined;
      const name = `${step.layer.name}/d_input_${i}`;
      return ctx.g.op(
        'Slice',
        [dz, ctx.g.constInt(`${name}/begin`, begin), ctx.g.constInt(`${name}/size`, size)],
        { ...ctx.TC, Index: { type: 'int32' } },
        name,
      );
    });
  },
};
