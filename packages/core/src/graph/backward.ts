/**
 * The backward pass over the forward's steps in reverse: each step's output gradient is the sum
 * of what its readers sent back (a branch point adds its consumers' gradients), its activation's
 * gradient, then its kind's. Steps below the lowest trainable layer are never visited, so a frozen
 * base costs no backward work.
 * @internal
 */
import { activationGrad } from './activations.js';
import type { GraphContext } from './context.js';
import { kindOf, type Step } from './kinds/index.js';
import { unsupported } from './layers.js';

/** Steps whose output depends on a trainable variable (their gradient is needed). */
function needingGradients(steps: Step[], trainable: Set<number>): Set<Step> {
  const needs = new Set<Step>();
  for (const step of steps) {
    if (Object.values(step.params).some((p) => trainable.has(p)) || step.sources.some((s) => s !== undefined && needs.has(s))) needs.add(step);
  }
  return needs;
}

/**
 * Gradients of the trainable variables, given d(loss)/d(logits) (`dLogits`, compute type) of the
 * output step (whose softmax or sigmoid the loss already includes when `logitsStep` is set).
 */
export function buildBackward(ctx: GraphContext, steps: Step[], output: Step, dLogits: string, trainable: Set<number>, logits: boolean): Map<number, string> {
  const grads = new Map<number, string>();
  const bctx = { ...ctx, trainable: (i: number) => trainable.has(i), setGrad: (i: number, t: string) => void grads.set(i, t) };
  const needs = needingGradients(steps, trainable);
  const incoming = new Map<Step, string[]>([[output, [dLogits]]]);
  for (let s = steps.length - 1; s >= 0; s--) {
    const step = steps[s]!;
    const parts = incoming.get(step);
    if (!parts || !needs.has(step)) continue;
    const name = step.layer.name;
    const dy = parts.length === 1 ? parts[0]! : ctx.g.op('AddN', parts, { ...ctx.TC, N: { i: parts.length } }, `${name}/d_sum`);
    const dz = step === output && logits ? dy : activationGrad(ctx.g, ctx.CT, step.activation, dy, step.output, step.preActivation, name, ctx.scalar);
    if (dz === undefined) throw unsupported(step.layer, `activation '${step.activation}' has no graph gradient yet`);
    const kind = kindOf(step.kind)!;
    if (!kind.backward) throw unsupported(step.layer, kind.noGradient ?? 'no graph gradient yet');
    const wants = step.sources.map((src) => src !== undefined && needs.has(src));
    kind.backward(bctx, step, dz, wants).forEach((dx, i) => {
      const src = step.sources[i];
      if (dx === undefined || !src || !wants[i]) return;
      incoming.set(src, [...(incoming.get(src) ?? []), dx]);
    });
  }
  return grads;
}
