/**
 * A `tf.data.Dataset` view of a flow, for `model.fitDataset`. Each element is `{ xs, ys }` built
 * on the batch's shared memory without copying; images package code never imports TensorFlow, so
 * the caller passes its `tf` namespace.
 *
 * A tfjs-node tensor built from a typed array may read that memory for as long as it lives, so
 * each tensor is registered with its batch (`batch.retain`): the flow refills a slot only once
 * every tensor on it is disposed, and allocates another slot meanwhile if it must.
 */
import type { ImageBatch } from './batch/batch.js';
import type { ImageFlow } from './flow/flow.js';

/** The part of the tfjs API the adapter uses (structural, so any tfjs build fits). */
export interface TfLike {
  tensor(values: Float32Array | Int32Array, shape: number[], dtype?: 'float32' | 'int32'): unknown;
  // tfjs's own parameter type, with its TensorContainer widened (so that tfjs-node's typings fit).
  data: { generator(fn: () => AsyncIterator<unknown> | Iterator<unknown> | Promise<Iterator<unknown>>): unknown };
}

export interface DatasetOptions {
  /** Include `ys` (default true when the flow has labels). */
  labels?: boolean;
}

function element(tf: TfLike, batch: ImageBatch, withLabels: boolean) {
  const images = batch.images instanceof Uint8Array ? Int32Array.from(batch.images) : batch.images;
  const xs = tf.tensor(images, batch.shape, images instanceof Int32Array ? 'int32' : 'float32') as { isDisposed: boolean };
  batch.retain(xs);
  if (!withLabels) return { xs };
  const ys = batch.outputs().map((labels) => {
    const values = labels instanceof Uint8Array ? Float32Array.from(labels) : labels;
    const tensor = tf.tensor(values, [batch.size, values.length / batch.size], 'float32') as { isDisposed: boolean };
    batch.retain(tensor); // class mode 'input': the labels are the images themselves
    return tensor;
  });
  return { xs, ys: ys.length === 1 ? ys[0] : ys };
}

/**
 * Wraps a flow as a tf.data.Dataset; each iteration of the dataset runs the flow's next epoch.
 * No need for `.prefetch()` or `.shuffle()`: the flow already prefetches and shuffles (and each
 * element held by such a buffer keeps its slot, growing memory).
 *
 * @example
 * const ds = toTfDataset(flow, tf);
 * await model.fitDataset(ds, { epochs: 5 });
 */
export function toTfDataset<D = unknown>(flow: ImageFlow, tf: TfLike, options: DatasetOptions = {}): D {
  const withLabels = options.labels ?? flow.classMode !== 'none';
  return tf.data.generator(async function* () {
    for await (const batch of flow) yield element(tf, batch, withLabels);
  }) as D;
}
