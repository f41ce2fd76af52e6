/**
 * Base training: a batch loop over an image flow. The next batch is already being decoded by the
 * pool while TensorFlow trains on the current one (the flow prefetches).
 */
import type { ImageBatch, ImageFlow } from '@featherstack/images';
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

export interface TrainBaseOptions {
  epochs?: number;
  learningRate?: number;
  signal?: AbortSignal;
  /** Called after every epoch with its mean loss and accuracy. */
  onEpochEnd?: (epoch: number, logs: { loss: number; acc: number; seconds: number; imagesPerSecond: number }) => void;
}

export interface EpochLog {
  epoch: number;
  loss: number;
  acc: number;
  seconds: number;
  imagesPerSecond: number;
}

/** Tensors for one batch. The pixels are uploaded to TensorFlow by the first op that uses them. */
export function batchTensors(tf: Tf, batch: ImageBatch, numClasses: number): { x: Tensor; y: Tensor } {
  const x = tf.tensor4d(batch.images, batch.shape);
  const labels = batch.labels();
  if (!labels) throw invalidOption('flow.classMode', "'categorical', 'sparse' or 'binary' to train a classifier", 'none');
  const y = labels.length === batch.size * numClasses ? tf.tensor2d(labels, [batch.size, numClasses]) : tf.tensor2d(labels, [batch.size, 1]);
  return { x, y };
}

/**
 * Trains `model` (a base with its temporary classifier) on `flow` for `epochs` epochs.
 *
 * @example
 * const history = await trainBase(tf, withClassifier(tf, base, 10), flow, { epochs: 5 });
 */
export async function trainBase(tf: Tf, model: LayersModel, flow: ImageFlow, options: TrainBaseOptions = {}): Promise<EpochLog[]> {
  const epochs = options.epochs ?? 5;
  if (!Number.isInteger(epochs) || epochs < 1) throw invalidOption('epochs', 'a positive integer', epochs);
  const lr = options.learningRate ?? 1e-3;
  if (!(typeof lr === 'number' && lr > 0 && Number.isFinite(lr))) throw invalidOption('learningRate', 'a positive number', lr);
  const numClasses = flow.classNames.length;
  const binary = flow.classMode === 'binary';
  model.compile({
    optimizer: tf.train.adam(lr),
    loss: binary ? 'binaryCrossentropy' : flow.classMode === 'sparse' ? 'sparseCategoricalCrossentropy' : 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
  const history: EpochLog[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const started = performance.now();
    let loss = 0;
    let acc = 0;
    let seen = 0;
    for await (const batch of flow.epoch(epoch, options.signal ? { signal: options.signal } : {})) {
      const { x, y } = batchTensors(tf, batch, numClasses);
      try {
        // Awaited before the next batch is requested: the slot's memory stays valid while TF reads it.
        const [l, a] = (await model.trainOnBatch(x, y)) as number[];
        loss += l! * batch.size;
        acc += a! * batch.size;
        seen += batch.size;
      } finally {
        x.dispose();
        y.dispose();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const log = { epoch, loss: loss / seen, acc: acc / seen, seconds, imagesPerSecond: seen / seconds };
    history.push(log);
    options.onEpochEnd?.(epoch, log);
  }
  return history;
}
