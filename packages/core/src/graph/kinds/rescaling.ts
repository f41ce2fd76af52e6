/**
 * Preprocessing layers inside a model: Rescaling (x · scale + offset) and Normalization
 * ((x − mean) / max(√variance, 1e-7), Keras 3's formula), both on the last axis.
 * @internal
 */
import { F32 } from '@featherstack/tensorflow';
import { unsupported, weightNamed } from '../layers.js';
import type { LayerKind } from './kind.js';

export const Rescaling: LayerKind = {
  forward(ctx, step) {
    const name = step.layer.name;
    const scale = Number(step.config.scale ?? 1);
    const offset = Number(step.config.offset ?? 0);
    step.saved.scale = ctx.scalar(`${name}/scale`, scale);
    const scaled = ctx.g.op('Mul', [step.inputs[0]!, step.saved.scale], ctx.TC, `${name}/mul`);
    return offset === 0 ? scaled : ctx.g.op('AddV2', [scaled, ctx.scalar(`${name}/offset`, offset)], ctx.TC, `${name}/add`);
  },
  backward: (ctx, step, dz, wants) => (wants[0] ? [ctx.g.op('Mul', [dz, step.saved.scale!], ctx.TC, `${step.layer.name}/d_input`)] : []),
};

/** Per-channel statistics from the layer's weights, or from its config. */
function statistic(ctx: Parameters<LayerKind['forward']>[0], step: Parameters<LayerKind['forward']>[1], role: 'mean' | 'variance'): string {
  const channels = step.inputShapes[0]!.at(-1)!;
  const w = weightNamed(step.layer, role);
  const flat = (t: string) => ctx.g.op('Reshape', [t, ctx.g.constInt(`${step.layer.name}/${role}_shape`, [channels])], { ...F32, Tshape: { type: 'int32' } });
  if (w) {
    step.params[role] = ctx.weightIndex(step.layer, w);
    return flat(ctx.reads[step.params[role]]!);
  }
  const value = step.config[role];
  const values = (Array.isArray(value) ? value.flat(4) : [value]) as number[];
  if (values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw unsupported(step.layer, `no ${role} (neither a weight nor in its config)`);
  return ctx.g.constFloat(`${step.layer.name}/${role}`, values.length === 1 ? Array(channels).fill(values[0]) : values, [channels]);
}

export const Normalization: LayerKind = {
  forward(ctx, step) {
    const { g } = ctx;
    const name = step.layer.name;
    const axis = step.config.axis ?? -1;
    const rank = step.inputShapes[0]!.length;
    const last = (a: unknown) => a === -1 || a === rank - 1;
    if (!(last(axis) || (Array.isArray(axis) && axis.length === 1 && last(axis[0]))))
      throw unsupported(step.layer, `axis ${JSON.stringify(axis)} (only the last)`);
    const std = g.op('Maximum', [g.op('Sqrt', [statistic(ctx, step, 'variance')], F32), g.constFloat(`${name}/epsilon`, [1e-7], [])], F32);
    step.saved.scale = ctx.compute(g.op('Reciprocal', [std], F32), `${name}/inv_std`);
    const centred = g.op('Sub', [step.inputs[0]!, ctx.compute(statistic(ctx, step, 'mean'))], ctx.TC, `${name}/sub`);
    return g.op('RealDiv', [centred, ctx.compute(std)], ctx.TC, `${name}/div`);
  },
  backward: (ctx, step, dz, wants) => (wants[0] ? [ctx.g.op('Mul', [dz, step.saved.scale!], ctx.TC, `${step.layer.name}/d_input`)] : []),
};
