/**
 * Sets a built tfjs model's weights from a Keras weight table, layer by layer, after checking that
 * every weight exists, has the shape the tfjs layer needs and holds finite numbers. Nothing is
 * guessed: a layer without weights in the file, a weight of another shape, or a weight in the file
 * that no layer takes is refused, naming the layer, the weight, both shapes and the file.
 */
import type { LayersModel, Tf } from '@featherstack/tensorflow';
import { ModelImportError } from './errors.js';
import { own } from './json.js';
import type { KerasWeight, WeightTable } from './weights.js';

type Layer = LayersModel['layers'][number];

/**
 * Keras weights a tfjs class keeps elsewhere or not at all. Normalization's `count` is adapt()'s
 * bookkeeping (how many samples the statistics saw), which inference never reads.
 */
const DROPPED: Record<string, (weights: KerasWeight[]) => KerasWeight[]> = {
  Normalization: (weights) => (weights.length === 3 && weights[2]!.dataset.shape.length === 0 ? weights.slice(0, 2) : weights),
};

const shapeText = (shape: readonly (number | null)[]) => `[${shape.join(', ')}]`;

function site(layer: Layer, file: string) {
  return { file, layer: layer.name, className: layer.getClassName() };
}

/** The weight's own name, without the layer scope tfjs puts in front: `kernel`, `moving_mean`. */
function weightName(originalName: string): string {
  return originalName.slice(originalName.lastIndexOf('/') + 1);
}

function values(weight: KerasWeight, layer: Layer, name: string, file: string): Float32Array {
  const data = weight.dataset.read();
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new ModelImportError(site(layer, file), `weight '${name}' (${weight.where}) holds ${data[i]} at index ${i}: weights must be finite`);
    }
  }
  return data;
}

function assignLayer(tf: Tf, layer: Layer, found: KerasWeight[] | undefined, file: string): void {
  const targets = layer.weights;
  const names = targets.map((w) => weightName(w.originalName));
  if (found === undefined || found.length === 0) {
    throw new ModelImportError(site(layer, file), `needs ${targets.length} weights (${names.join(', ')}) but the file holds none for it`);
  }
  const weights = (own(DROPPED, layer.getClassName()) ?? ((w) => w))(found);
  if (weights.length !== targets.length) {
    const held = weights.map((w) => `${w.where} ${shapeText(w.dataset.shape)}`).join(', ');
    throw new ModelImportError(site(layer, file), `needs ${targets.length} weights (${names.join(', ')}) but the file holds ${weights.length}: ${held}`);
  }
  targets.forEach((target, i) => {
    const held = weights[i]!.dataset.shape;
    if (held.length !== target.shape.length || held.some((d, k) => d !== target.shape[k])) {
      throw new ModelImportError(
        site(layer, file),
        `weight '${names[i]}': the file holds shape ${shapeText(held)} (${weights[i]!.where}) where the layer needs ${shapeText(target.shape)}`,
      );
    }
  });
  const tensors = weights.map((w, i) => tf.tensor(values(w, layer, names[i]!, file), w.dataset.shape, 'float32'));
  try {
    // setWeights assigns the tensors' data to the variables (which take a reference of their own),
    // so the temporaries can be disposed at once.
    layer.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}

/**
 * Sets every weight of `model` from `table`; `file` names the model file in errors.
 *
 * @example
 * assignWeights(tf, model, kerasV3Weights(h5, config), 'models/resnet.keras');
 * @internal
 */
export function assignWeights(tf: Tf, model: LayersModel, table: WeightTable, file: string): void {
  const used = new Set<string>();
  const walk = (layers: Layer[], path: string[]) => {
    for (const layer of layers) {
      if (layer instanceof tf.LayersModel) {
        walk(layer.layers, [...path, layer.name]);
        continue;
      }
      if (layer.weights.length === 0) continue;
      const key = JSON.stringify([...path, layer.name]);
      if (used.has(key)) throw new ModelImportError(site(layer, file), 'is reached twice; a model with two layers of one name cannot be imported');
      used.add(key);
      assignLayer(tf, layer, table.get(key), file);
    }
  };
  walk(model.layers, []);
  for (const [key, weights] of table) {
    if (used.has(key) || weights.length === 0) continue;
    const path = JSON.parse(key) as string[];
    throw new ModelImportError(
      { file, layer: path.join('/') },
      `the file holds ${weights.length} weights for this layer (${weights[0]!.where}, …) but the model has no layer of that name with weights`,
    );
  }
}
