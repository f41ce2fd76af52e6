/**
 * `featherstack evaluate`: a stacked model over a directory of class folders, through the same
 * loading as training (no augmentation): accuracy, top-k, per-class metrics, confusion matrix.
 */
import { type Evaluation, loadStacked, metricsFromProbabilities } from '@featherstack/head';
import { flowFromData, type OnError } from '@featherstack/images';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { modelPredictor, registerKerasExtensions } from '@featherstack/core';

/** An evaluation, with the images left out under onError: 'skip'. */
export type ImageEvaluation = Evaluation & { skipped: { path: string; reason: string }[] };

export async function evaluate(options: { model: string; data: string; topK?: number[]; workers?: number; onError?: OnError }): Promise<ImageEvaluation> {
  const tf = loadTensorFlow();
  // A stacked model over an imported base holds layers that featherstack registers with tfjs.
  registerKerasExtensions(tf);
  const { model, metadata } = await loadStacked(tf, options.model);
  const [height, width] = metadata.inputShape;
  const flow = await flowFromData(options.data, {
    targetSize: [height, width],
    colorMode: metadata.colorMode,
    interpolation: metadata.interpolation,
    augment: { rescale: metadata.rescale, preprocess: metadata.preprocess ?? 'none' },
    classMode: 'sparse',
    shuffle: false,
    batchSize: 128,
    onError: options.onError ?? 'raise',
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
  });
  const predictor = await modelPredictor(tf, model);
  try {
    const unknown = flow.classNames.filter((c) => !metadata.classNames.includes(c));
    if (unknown.length > 0)
      throw new Error(
        `evaluate: ${options.data} has classes the model does not know: ${unknown.join(', ')} (model classes: ${metadata.classNames.join(', ')})`,
      );
    const c = metadata.classNames.length;
    const probabilities = new Float32Array(flow.samples * c);
    const labels = new Int32Array(flow.samples);
    let row = 0;
    for await (const batch of flow) {
      probabilities.set(await predictor.predict(batch.images as Float32Array, batch.size), row * c);
      // The directory's class order may differ from the model's: labels are mapped by name.
      for (let i = 0; i < batch.size; i++) labels[row + i] = metadata.classNames.indexOf(flow.classNames[batch.classIndex[i]!]!);
      row += batch.size;
    }
    if (row === 0) throw new Error(`evaluate: none of the ${flow.samples} images in ${options.data} could be loaded`);
    const metrics = metricsFromProbabilities(probabilities.subarray(0, row * c), labels.subarray(0, row), metadata.classNames, options.topK ?? [1, 3]);
    return { ...metrics, skipped: flow.skippedFiles.map(({ path, reason }) => ({ path, reason })) };
  } finally {
    await predictor.close();
    await flow.close();
    model.dispose();
  }
}
