/**
 * Where Keras keeps each layer's weights in its two HDF5 layouts, as one table: layer path (the
 * names of the nested models above the layer, then its own) → its weights in Keras's order
 * (trainable ones first, each layer's in creation order — the order tfjs's `layer.weights` lists).
 *
 * `.keras` (Keras 3): `layers/<key>/vars/<i>`, where `<key>` is not the layer's name but its class
 * in snake case, numbered in the order of the model's layers (`conv2d`, `conv2d_1`, …; InputLayer
 * counts in a Functional model, not in a Sequential one; operations such as `x + 3` do not count).
 * Recent Keras also writes the layer's name as the `name` attribute of its `vars` group, which
 * wins where present. A nested model's layers are under `layers/<key>/layers/…`.
 *
 * Legacy `.h5` (Keras 2 and Keras 3's `model.save('x.h5')`): `model_weights/<layer>/` lists its
 * datasets in the `weight_names` attribute (`conv1/kernel`, Keras 2 `conv1/kernel:0`); a nested
 * model lists all its layers' weights there, named `<inner layer>/<weight>`.
 */
import type { Hdf5Dataset, Hdf5Reader } from './hdf5.js';
import { asArray, asObject, isObject, type JsonObject } from './json.js';
import { isOperation } from './topology.js';

/** One weight in the file: where it is (for errors) and its data. @internal */
export interface KerasWeight {
  where: string;
  dataset: Hdf5Dataset;
}

/** Weights by layer path, `JSON.stringify([...nested model names, layer name])`. @internal */
export type WeightTable = Map<string, KerasWeight[]>;

const MODELS = new Set(['Functional', 'Model', 'Sequential']);

/** Keras's naming.to_snake_case, which names a layer's group in a `.keras` weights file. @internal */
export function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

interface Entry {
  name: string;
  className: string;
  config: JsonObject;
}

/** The model's layers as Keras lists them in `model.layers` (operations are not layers). */
function layersOf(file: string, modelClass: string, config: JsonObject): Entry[] {
  const entries: Entry[] = [];
  for (const raw of asArray({ file }, 'layers', config.layers)) {
    const entry = asObject({ file }, 'a layer entry', raw);
    if (isOperation(entry)) continue;
    const layerConfig = isObject(entry.config) ? entry.config : {};
    const className = String(entry.class_name);
    if (modelClass === 'Sequential' && className === 'InputLayer') continue;
    entries.push({ name: String(layerConfig.name ?? entry.name), className, config: layerConfig });
  }
  return entries;
}

/**
 * The weights of a `.keras` archive's model.weights.h5, by layer path.
 *
 * @example
 * const table = kerasV3Weights(h5, JSON.parse(configJson));
 * table.get(JSON.stringify(['conv1'])); // [{ where: 'layers/conv2d/vars/0', … }, …]
 * @internal
 */
export function kerasV3Weights(h5: Hdf5Reader, model: JsonObject): WeightTable {
  const table: WeightTable = new Map();
  const walk = (modelClass: string, config: JsonObject, group: string, path: string[]) => {
    const children = h5.isGroup(`${group}/layers`) ? h5.keys(`${group}/layers`) : [];
    const byName = new Map<string, string>();
    for (const child of children) {
      const name = h5.attribute(`${group}/layers/${child}/vars`, 'name');
      if (typeof name === 'string') byName.set(name, child);
    }
    const used = new Map<string, number>();
    for (const entry of layersOf(h5.file, modelClass, config)) {
      const snake = snakeCase(entry.className);
      const n = used.get(snake);
      used.set(snake, n === undefined ? 0 : n + 1);
      const key = byName.get(entry.name) ?? (n === undefined ? snake : `${snake}_${n + 1}`);
      const layerGroup = `${group}/layers/${key}`;
      if (MODELS.has(entry.className)) {
        walk(entry.className, entry.config, layerGroup, [...path, entry.name]);
        continue;
      }
      const vars = `${layerGroup}/vars`;
      if (!h5.isGroup(vars)) continue;
      const indices = h5
        .keys(vars)
        .map(Number)
        .sort((a, b) => a - b);
      table.set(
        JSON.stringify([...path, entry.name]),
        indices.map((i) => ({ where: `${vars}/${i}`, dataset: h5.dataset(`${vars}/${i}`) })),
      );
    }
  };
  walk(String(model.class_name), asObject({ file: h5.file }, 'the model config', model.config), '', []);
  return table;
}

/** Every layer below a nested model, by name, with its path below that model. */
function nestedPaths(file: string, modelClass: string, config: JsonObject, prefix: string[], out: Map<string, string[]>): Map<string, string[]> {
  for (const entry of layersOf(file, modelClass, config)) {
    if (MODELS.has(entry.className)) nestedPaths(file, entry.className, entry.config, [...prefix, entry.name], out);
    else out.set(entry.name, [...prefix, entry.name]);
  }
  return out;
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * The weights of a legacy Keras `.h5` file, by layer path.
 * @internal
 */
export function legacyWeights(h5: Hdf5Reader, model: JsonObject): WeightTable {
  const table: WeightTable = new Map();
  const root = h5.isGroup('model_weights') ? 'model_weights' : '';
  const config = asObject({ file: h5.file }, 'the model config', model.config);
  const entries = new Map(layersOf(h5.file, String(model.class_name), config).map((e) => [e.name, e]));
  for (const layer of strings(h5.attribute(root || '/', 'layer_names'))) {
    const names = strings(h5.attribute(`${root}/${layer}`, 'weight_names'));
    const entry = entries.get(layer);
    const inner = entry && MODELS.has(entry.className) ? nestedPaths(h5.file, entry.className, entry.config, [layer], new Map()) : undefined;
    for (const name of names) {
      const where = `${root}/${layer}/${name}`;
      // A nested model's weight is `<inner layer>/<weight>`; the inner layer owns it.
      const parts = name.split('/');
      const owner = parts.length > 1 ? parts[parts.length - 2]! : layer;
      const path = inner === undefined ? [layer] : (inner.get(owner) ?? [layer, owner]);
      const key = JSON.stringify(path);
      if (!table.has(key)) table.set(key, []);
      table.get(key)!.push({ where, dataset: h5.dataset(where) });
    }
  }
  return table;
}
