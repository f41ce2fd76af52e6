/**
 * The base network. By default the seed's CNN: conv32 3×3 → maxpool → conv64 3×3 → maxpool →
 * flatten → dense128 → dense64, ReLU throughout; the last dense layer is the feature layer.
 *
 * The seed's listing compiles that 64-unit ReLU output directly against one-hot labels with
 * categorical cross-entropy, which cannot train (the output is neither a distribution nor sized to
 * the classes). featherstack trains the base with a temporary softmax classifier on top of the
 * feature layer and discards it after training.
 */
import { extname, resolve } from 'node:path';
import { DEFAULT_SEED, FEATURE_LAYER } from '@featherstack/common';
import { checkModelFiles, type LayersModel, type Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';
import { loadModelFile } from './import/index.js';

export interface BaseModelOptions {
  /** [height, width, channels] of the images. */
  inputShape: [number, number, number];
  /** Filters of each conv 3×3 + maxpool 2×2 block. Default [32, 64]. */
  filters?: number[];
  /** Units of each dense layer; the last one is the feature layer. Default [128, 64]. */
  dense?: number[];
  /** Seed for the weight initialisers. */
  seed?: number;
}

function positiveInts(name: string, value: unknown, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => !Number.isInteger(v) || v < 1)) {
    throw invalidOption(name, 'a non-empty array of positive integers', value);
  }
  return value as number[];
}

/**
 * Builds the base feature extractor, the seed tutorial's CNN. Its layers are named conv1,
 * pool1, …, flatten, dense1, …, and its output layer `features`.
 *
 * @example
 * const base = createBaseModel(tf, { inputShape: [28, 28, 1] });
 */
export function createBaseModel(tf: Tf, options: BaseModelOptions): LayersModel {
  const shape = options.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((v) => !Number.isInteger(v) || v < 1)) {
    throw invalidOption('inputShape', '[height, width, channels] of positive integers', shape);
  }
  const filters = positiveInts('filters', options.filters, [32, 64]);
  const dense = positiveInts('dense', options.dense, [128, 64]);
  let seed = options.seed ?? DEFAULT_SEED;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const input = tf.input({ shape });
  let x = input as unknown as ReturnType<ReturnType<typeof tf.layers.dense>['apply']>;
  // Stable layer names (conv1, pool1, …, flatten, dense1, …, features): what --feature-layer names.
  filters.forEach((f, i) => {
    x = tf.layers.conv2d({ filters: f, kernelSize: 3, activation: 'relu', kernelInitializer: init(), name: `conv${i + 1}` }).apply(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, name: `pool${i + 1}` }).apply(x);
  });
  x = tf.layers.flatten({ name: 'flatten' }).apply(x);
  dense.forEach((units, i) => {
    const name = i === dense.length - 1 ? FEATURE_LAYER : `dense${i + 1}`;
    x = tf.layers.dense({ units, activation: 'relu', kernelInitializer: init(), name }).apply(x);
  });
  return tf.model({ inputs: input, outputs: x as never, name: 'base' });
}

/**
 * The training model: the base followed by a temporary softmax classifier. Training it trains the
 * base's layers (they are shared).
 */
export function withClassifier(tf: Tf, base: LayersModel, numClasses: number, seed = 1000): LayersModel {
  const out = tf.layers
    .dense({ units: numClasses, activation: 'softmax', name: 'temporary_classifier', kernelInitializer: tf.initializers.glorotUniform({ seed }) })
    .apply(base.outputs[0]!);
  return tf.model({ inputs: base.inputs, outputs: out as never, name: 'base_with_classifier' });
}

/**
 * Loads a base network: a Keras 3 `.keras` file, a legacy Keras `.h5`, or a tfjs layers model
 * (`model.json`, e.g. one saved by `model.save('file://…')` or converted with tensorflowjs_converter,
 * quantized weights included). With `featureLayer`, checks that the model has it.
 *
 * @example
 * const base = await loadBaseModel(tf, 'models/mobilenet_v2.keras');
 * const extractor = featureExtractor(tf, base); // cut before its classifier
 */
export async function loadBaseModel(tf: Tf, path: string, featureLayer?: string): Promise<LayersModel> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('path', 'the path of a .keras, .h5 or tfjs model.json file', path);
  let model: LayersModel;
  if (path.startsWith('http')) {
    try {
      model = await tf.loadLayersModel(path);
    } catch (error) {
      throw invalidOption('path', `a loadable tfjs layers model (${(error as Error).message})`, path);
    }
  } else {
    const file = resolve(path.startsWith('file://') ? path.slice('file://'.length) : path);
    if (extname(file).toLowerCase() === '.json') await checkModelFiles(file);
    try {
      model = await loadModelFile(tf, file);
    } catch (error) {
      if ((error as Error).name === 'ModelImportError' || (error as Error).name === 'ModelFileError') throw error;
      throw invalidOption('path', `a loadable model (${(error as Error).message})`, path);
    }
  }
  if (featureLayer !== undefined && !model.layers.some((l) => l.name === featureLayer)) {
    const names = model.layers.map((l) => l.name).join(', ');
    model.dispose();
    throw invalidOption('featureLayer', `a layer of ${path} (layers: ${names})`, featureLayer);
  }
  return model;
}
