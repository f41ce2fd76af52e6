/**
 * A `tf.data.Dataset` view of a flow, for `model.fitDataset`. Each element is `{ xs, ys }` built
 * from the batch's shared memory; images package code never imports TensorFlow, so the caller
 * passes its `tf` namespace.
 *
 * tfjs-node keeps a tensor's typed array and copies it into TensorFlow only when an op first uses
 * it; a slot recycled before that would change the tensor. The adapter therefore hands each new
 * tensor to TensorFlow at once (the one copy that is unavoidable: TensorFlow owns its memory), and
 * falls back to copying the array on backends without that hook.
 */
import type { ImageBatch, ImageFlow } from './flow.js';

/** The part of the tfjs API the adapter uses (structural, so any tfjs build fits). */
export interface TfLike {
  tensor(values: Float32Array | Int32Array, shape: number[], dtype?: 'float32' | 'int32'): unknown;
  backend(): unknown;
  data: { generator(fn: () => AsyncIterator<unknown>): unknown };
}

export interface DatasetOptions {
  /** Include `ys` (default true when the flow has labels). */
  labels?: boolean;
}

function materialize(tf: TfLike, values: Float32Array | Int32Array, shape: number[], dtype: 'float32' | 'int32'): unknown {
  const backend = tf.backend() as { getInputTensorIds?: (t: unknown[]) => unknown };
  if (typeof backend.getInputTensorIds !== 'function') return tf.tensor(values.slice(), shape, dtype);
  const tensor = tf.tensor(values, shape, dtype);
  backend.getInputTensorIds([tensor]);
  return tensor;
}

function element(tf: TfLike, batch: ImageBatch, withLabels: boolean) {
  const images = batch.images instanceof Uint8Array ? Int32Array.from(batch.images) : batch.images;
  const xs = materialize(tf, images, batch.shape, images instanceof Int32Array ? 'int32' : 'float32');
  if (!withLabels) return { xs };
  const ys = batch.outputs().map((y) => {
    const values = y instanceof Uint8Array ? Float32Array.from(y) : y;
    return materialize(tf, values, [batch.size, values.length / batch.size], 'float32');
  });
  return { xs, ys: ys.length === 1 ? ys[0] : ys };
}

/**
 * Wraps a flow as a tf.data.Dataset; each iteration of the dataset runs the flow's next epoch.
 * Do not add `.prefetch()` or `.shuffle()`: the flow already prefetches and shuffles.
 *
 * @example
 * const ds = toTfDataset(flow, tf);
 * await model.fitDataset(ds, { epochs: 5 });
 */
export function toTfDataset<D = unknown>(flow: ImageFlow, tf: TfLike, options: DatasetOptions = {}): D {
  const withLabels = options.labels ?? (flow.classMode !== 'none');
  return tf.data.generator(async function* () {
    for await (const batch of flow) yield element(tf, batch, withLabels);
  }) as D;
}
