/**
 * The optimizers, each one fused TensorFlow kernel per variable (ResourceApplyAdam and friends),
 * with their slots as variables of their own, zero-initialised or restored through slot_init/<k>.
 * @internal
 */
import { F32, type GraphBuilder } from '@featherstack/tensorflow';
import type { GraphVariable } from './context.js';

export type { OptimizerKind } from '@featherstack/tensorflow';

import type { OptimizerKind } from '@featherstack/tensorflow';

export const OPTIMIZER_SLOTS: Record<OptimizerKind, number> = { adam: 2, sgd: 0, momentum: 1, rmsprop: 2 };

/** Slot variables per trainable variable; returns their handles and the slot_init assigns. */
export function buildSlots(g: GraphBuilder, variables: GraphVariable[], trainable: number[], perVariable: number) {
  const inits: string[] = [];
  const handles = trainable.map((v, k) =>
    Array.from({ length: perVariable }, (_, s) => {
      const slot = k * perVariable + s;
      const shape = variables[v]!.shape;
      const handle = g.op(
        'VarHandleOp',
        [],
        { dtype: { type: 'float' }, shape: { shape }, shared_name: { s: `slot${slot}` }, container: { s: '' } },
        `slot/${slot}`,
      );
      g.op('ReadVariableOp', [handle], { dtype: { type: 'float' } }, `slot_read/${slot}`);
      inits.push(g.op('AssignVariableOp', [handle, g.placeholder(`slot_init/${slot}`, 'float', shape)], { dtype: { type: 'float' } }, `slot_assign/${slot}`));
      return handle;
    }),
  );
  return { handles, inits };
}

/** The update ops of `optimizer` applying `gradients` (one per trainable variable), grouped as `group`. */
export function buildUpdates(
  g: GraphBuilder,
  optimizer: OptimizerKind,
  variables: { handles: string[]; trainable: number[]; slots: string[][] },
  gradients: string[],
  group: string,
): void {
  const lr = 'lr';
  const c = (name: string, v: number) => (g.nodes.some((n) => n.name === name) ? name : g.constFloat(name, [v], []));
  const locking = { use_locking: { b: false } };
  const updates = variables.trainable.map((v, k) => {
    const [s0, s1] = variables.slots[k]!;
    const grad = gradients[k]!;
    const handle = variables.handles[v]!;
    const name = `${group}/${v}`;
    switch (optimizer) {
      case 'adam':
        return g.op(
          'ResourceApplyAdam',
          [handle, s0!, s1!, 'beta1_power', 'beta2_power', lr, c('beta1', 0.9), c('beta2', 0.999), c('epsilon', 1e-7), grad],
          { ...F32, ...locking, use_nesterov: { b: false } },
          name,
        );
      case 'sgd':
        return g.op('ResourceApplyGradientDescent', [handle, lr, grad], { ...F32, ...locking }, name);
      case 'momentum':
        return g.op('ResourceApplyMomentum', [handle, s0!, lr, grad, c('momentum', 0.9)], { ...F32, ...locking, use_nesterov: { b: false } }, name);
      default:
        return g.op(
          'ResourceApplyRMSProp',
          [handle, s0!, s1!, lr, c('rho', 0.9), c('rms_momentum', 0), c('epsilon', 1e-7), grad],
          { ...F32, ...locking },
          name,
        );
    }
  });
  g.group(group, updates);
}

/** The optimizer's fed hyperparameters: the learning rate and Adam's bias-correction powers. */
export function buildHyperparameters(g: GraphBuilder): void {
  g.placeholder('lr', 'float', []);
  g.placeholder('beta1_power', 'float', []);
  g.placeholder('beta2_power', 'float', []);
}
