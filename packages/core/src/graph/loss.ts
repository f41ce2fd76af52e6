/**
 * The losses the graph engine trains with, on float32 logits: per-example loss summed as
 * `loss_sum`, correct predictions summed as `correct`, and d(loss)/d(logits) for the backward pass.
 * @internal
 */
import { F32, type GraphBuilder } from '@featherstack/tensorflow';

export type LossKind = 'categorical' | 'sparse' | 'binary';

function argmax(g: GraphBuilder, t: string, name: string): string {
  return g.op('ArgMax', [t, g.constInt(`${name}/axis`, [1], [])], { ...F32, Tidx: { type: 'int32' }, output_type: { type: 'int32' } }, name);
}

const equalInt = (g: GraphBuilder, a: string, b: string) =>
  g.op('Equal', [a, b], { T: { type: 'int32' }, incompatible_shape_error: { b: true } }, 'correct_mask');

function categorical(g: GraphBuilder, logits: string, classes: number) {
  const y = g.placeholder('y', 'float', [null, classes]);
  const xent = g.op('SoftmaxCrossEntropyWithLogits', [logits, y], F32, 'xent');
  return { perExample: `${xent}:0`, dLogits: `${xent}:1`, correct: equalInt(g, argmax(g, logits, 'predicted'), argmax(g, y, 'truth')) };
}

function sparse(g: GraphBuilder, logits: string) {
  // The flow's sparse labels are class indices stored as floats.
  const flat = g.op('Reshape', [g.placeholder('y', 'float', [null, 1]), g.constInt('y/flat', [-1])], { ...F32, Tshape: { type: 'int32' } });
  const y = g.op('Cast', [flat], { SrcT: { type: 'float' }, DstT: { type: 'int32' }, Truncate: { b: false } }, 'labels');
  const xent = g.op('SparseSoftmaxCrossEntropyWithLogits', [logits, y], { ...F32, Tlabels: { type: 'int32' } }, 'xent');
  return { perExample: `${xent}:0`, dLogits: `${xent}:1`, correct: equalInt(g, argmax(g, logits, 'predicted'), y) };
}

/** Binary cross-entropy on logits z: max(z, 0) − z·y + log(1 + e^−|z|); its gradient is σ(z) − y. */
function binary(g: GraphBuilder, logits: string) {
  const y = g.placeholder('y', 'float', [null, 1]);
  const terms = g.op(
    'AddV2',
    [
      g.op('Sub', [g.op('Relu', [logits], F32), g.op('Mul', [logits, y], F32)], F32),
      g.op('Log1p', [g.op('Exp', [g.op('Neg', [g.op('Abs', [logits], F32)], F32)], F32)], F32),
    ],
    F32,
  );
  const perExample = g.op('Sum', [terms, g.constInt('bce/axis', [1])], { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } }, 'bce');
  const dLogits = g.op('Sub', [g.op('Sigmoid', [logits], F32), y], F32, 'bce_grad');
  const predicted = g.op('Cast', [g.op('Greater', [logits, g.constFloat('zero', [0], [])], F32)], {
    SrcT: { type: 'bool' },
    DstT: { type: 'float' },
    Truncate: { b: false },
  });
  const correct = g.op('Equal', [predicted, y], { ...F32, incompatible_shape_error: { b: true } }, 'correct_mask');
  return { perExample, dLogits, correct };
}

/**
 * Builds the loss on `logits`, each example's weighed by the `sample_weight` feed (Keras's
 * class_weight; ones when there is none, and for validation); returns d(loss_sum)/d(logits).
 */
export function buildLoss(g: GraphBuilder, loss: LossKind, logits: string, classes: number): string {
  const { perExample, dLogits, correct } = loss === 'categorical' ? categorical(g, logits, classes) : loss === 'sparse' ? sparse(g, logits) : binary(g, logits);
  const weight = g.placeholder('sample_weight', 'float', [null]);
  const weighted = g.op('Mul', [perExample, weight], F32, 'weighted_loss');
  g.op('Sum', [weighted, g.constInt('batch_axis', [0])], { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } }, 'loss_sum');
  g.op(
    'Sum',
    [
      g.op('Cast', [correct], { SrcT: { type: 'bool' }, DstT: { type: 'float' }, Truncate: { b: false } }),
      g.constInt('correct_axes', loss === 'binary' ? [0, 1] : [0]),
    ],
    { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } },
    'correct',
  );
  const column = g.op('ExpandDims', [weight, g.constInt('sample_weight/axis', [-1], [])], { ...F32, Tdim: { type: 'int32' } }, 'sample_weight_column');
  return g.op('Mul', [dLogits, column], F32, 'weighted_d_logits');
}
