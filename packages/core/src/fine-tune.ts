/**
 * Which layers of a pretrained base train in fine-tuning, as Keras's transfer-learning guide has it:
 * every BatchNormalization stays frozen (inference mode, its moving statistics kept), and the other
 * layers with weights train — all of them, or the top N. With `bnTrain`, the BatchNormalizations
 * above the lowest training layer train too (batch statistics over the global batch, moving
 * averages updated: see graph/kinds/batch-norm.ts).
 */
import type { LayersModel } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

export type FineTune = 'all' | number;

/**
 * Freezes `model` for fine-tuning: BatchNormalization layers frozen (unless `bnTrain`), then
 * `fineTune` ('all', or the top N layers that have weights, BatchNormalization not counted)
 * trainable and everything below frozen. Returns the names of the layers that train.
 *
 * @example
 * const training = freezeForFineTuning(mobilenet, 20); // the top 20 weighted layers train
 */
export function freezeForFineTuning(model: LayersModel, fineTune: FineTune, options: { bnTrain?: boolean } = {}): string[] {
  const isNorm = (l: (typeof model.layers)[number]) => l.getClassName() === 'BatchNormalization';
  const weighted = model.layers.filter((l) => !isNorm(l) && l.weights.length > 0);
  if (fineTune !== 'all' && !(Number.isSafeInteger(fineTune) && fineTune >= 1 && fineTune <= weighted.length)) {
    throw invalidOption('fineTune', `'all' or a number of layers from 1 to the base's ${weighted.length} layers with weights`, fineTune);
  }
  const chosen = fineTune === 'all' ? weighted : weighted.slice(-fineTune);
  const training = new Set(chosen);
  if (options.bnTrain) {
    const lowest = model.layers.indexOf(chosen[0]!);
    for (const [i, layer] of model.layers.entries()) if (i > lowest && isNorm(layer)) training.add(layer);
  }
  for (const layer of model.layers) layer.trainable = training.has(layer);
  return model.layers.filter((l) => training.has(l)).map((l) => l.name);
}
