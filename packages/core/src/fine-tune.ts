/**
 * Which layers of a pretrained base train in fine-tuning, as Keras's transfer-learning guide has it:
 * every BatchNormalization stays frozen (inference mode, its moving statistics kept), and the other
 * layers with weights train — all of them, or the top N.
 */
import type { LayersModel } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

export type FineTune = 'all' | number;

/**
 * Freezes `model` for fine-tuning: BatchNormalization layers frozen, then `fineTune` ('all', or the
 * top N layers that have weights) trainable and everything below frozen. Returns the names of the
 * layers that train.
 *
 * @example
 * const training = freezeForFineTuning(mobilenet, 20); // the top 20 weighted layers train
 */
export function freezeForFineTuning(model: LayersModel, fineTune: FineTune): string[] {
  const weighted = model.layers.filter((l) => l.getClassName() !== 'BatchNormalization' && l.weights.length > 0);
  if (fineTune !== 'all' && !(Number.isSafeInteger(fineTune) && fineTune >= 1 && fineTune <= weighted.length)) {
    throw invalidOption('fineTune', `'all' or a number of layers from 1 to the base's ${weighted.length} layers with weights`, fineTune);
  }
  const training = new Set(fineTune === 'all' ? weighted : weighted.slice(-fineTune));
  for (const layer of model.layers) layer.trainable = training.has(layer);
  return [...training].map((l) => l.name);
}
