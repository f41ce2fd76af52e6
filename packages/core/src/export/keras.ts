/**
 * Writes a tfjs layers model as a Keras 3 `.keras` file, so that a model trained in Node goes back to
 * Python: `keras.saving.load_model('model.keras')` loads it and predicts what featherstack predicts.
 *
 * The archive holds what Keras writes: `metadata.json`, `config.json` (the model's config, which
 * Keras 3 reads in the legacy form tfjs serialises, given the Functional class's module) and
 * `model.weights.h5` (each layer's weights under `layers/<key>/vars/<i>`, `<key>` being its class in
 * snake case numbered per model, as import/weights.ts reads them back). Layers Keras does not have
 * (featherstack's own extension classes) and recurrent layers (Keras keeps their weights in a cell
 * of its own) are refused by name before anything is written.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '@featherstack/common';
import type { LayersModel } from '@featherstack/tensorflow';
import { zipSync } from 'fflate';
import { ModelExportError } from '../import/errors.js';
import { KERAS_EXTENSION_CLASSES } from '../import/extensions.js';
import { h5wasm } from '../import/hdf5.js';
import { snakeCase } from '../import/weights.js';

/** The Keras version the archive says wrote it: the format Keras 3 reads. */
const KERAS_VERSION = '3.5.0';

/** Layer classes Keras has under the same name and configuration as tfjs. */
const EXPORTABLE = new Set([
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'SeparableConv2D',
  'Dense',
  'Dropout',
  'Flatten',
  'Reshape',
  'Activation',
  'ReLU',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'BatchNormalization',
  'ZeroPadding2D',
  'Cropping2D',
  'Add',
  'Concatenate',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
  'Rescaling',
  'Sequential',
  'Model',
  'Functional',
]);

type Json = Record<string, unknown>;
type Layer = LayersModel['layers'][number];

const isModel = (layer: Layer): layer is Layer & LayersModel => 'layers' in layer && Array.isArray((layer as LayersModel).layers);
const classOf = (layer: Layer) => (isModel(layer) && layer.getClassName() === 'Model' ? 'Functional' : layer.getClassName());

/** Refuses, by name, the first layer Keras could not rebuild from its config. */
function checkExportable(model: LayersModel, file: string): void {
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (!EXPORTABLE.has(className)) {
      const why = ['GRU', 'LSTM', 'SimpleRNN'].includes(className)
        ? 'recurrent layers are not exported yet (Keras keeps their weights in a cell of its own)'
        : (KERAS_EXTENSION_CLASSES as readonly string[]).includes(className)
          ? "it is one of featherstack's own classes for imported Keras layers, not written back to Keras yet"
          : 'Keras has no layer of this class (a custom layer); export a model of Keras layers';
      throw new ModelExportError({ file, layer: layer.name, className }, `cannot be written as a Keras file: ${why}`);
    }
    if (isModel(layer)) checkExportable(layer, file);
  }
}

/**
 * tfjs numbers a layer's nodes over every model it was ever called in; Keras rebuilds only the nodes
 * of this model, numbered from 0. Each reference [layer, node, tensor] is renumbered to the node's
 * position among the ones this config refers to (the order of the layer's inbound_nodes entries).
 */
function renumberNodes(config: Json): void {
  const layers = (config.layers as Json[]) ?? [];
  const used = new Map<string, Set<number>>();
  const note = (ref: unknown[]) => {
    const [name, node] = ref as [string, number];
    if (!used.has(name)) used.set(name, new Set());
    used.get(name)!.add(node);
  };
  const refs = (nodes: unknown) => (nodes as unknown[][][]).flat();
  for (const layer of layers) for (const ref of refs(layer.inbound_nodes ?? [])) note(ref);
  for (const key of ['input_layers', 'output_layers']) for (const ref of (config[key] as unknown[][]) ?? []) note(ref);
  const index = (name: string, node: number) => [...(used.get(name) ?? [])].sort((a, b) => a - b).indexOf(node);
  const rewrite = (ref: unknown[]) => {
    ref[1] = index(ref[0] as string, ref[1] as number);
  };
  for (const layer of layers) for (const ref of refs(layer.inbound_nodes ?? [])) rewrite(ref);
  for (const key of ['input_layers', 'output_layers']) for (const ref of (config[key] as unknown[][]) ?? []) rewrite(ref);
  for (const layer of layers) if (layer.class_name === 'Model' || layer.class_name === 'Functional') renumberNodes(layer.config as Json);
}

/**
 * The config Keras 3 deserialises: tfjs's legacy form, its models given Keras 3's class names, and
 * input shapes as Keras 3 states them (an InputLayer's batch_shape; a Sequential opens with an
 * InputLayer, where tfjs puts batch_input_shape on its first layer and Keras 3 would read that as
 * a shape without the batch axis).
 */
function kerasConfig(model: LayersModel): Json {
  const json = model.toJSON(null, false) as unknown as Json;
  const rename = (entry: Json) => {
    if (entry.class_name === 'Model') entry.class_name = 'Functional';
    const inner = entry.config as Json | undefined;
    if (entry.class_name === 'InputLayer' && inner?.batch_input_shape) {
      inner.batch_shape = inner.batch_input_shape;
      delete inner.batch_input_shape;
    }
    const layers = (inner?.layers as Json[] | undefined) ?? [];
    const first = layers[0]?.config as Json | undefined;
    if (entry.class_name === 'Sequential' && layers[0]?.class_name !== 'InputLayer' && first?.batch_input_shape) {
      const batchShape = first.batch_input_shape;
      delete first.batch_input_shape;
      layers.unshift({ class_name: 'InputLayer', config: { batch_shape: batchShape, dtype: first.dtype ?? 'float32', name: `${String(inner!.name)}_input` } });
    }
    for (const layer of layers) rename(layer);
  };
  rename(json);
  if (json.class_name === 'Functional') renumberNodes(json.config as Json);
  const top =
    json.class_name === 'Functional' ? { module: 'keras.src.models.functional', registered_name: 'Functional' } : { module: 'keras', registered_name: null };
  return { ...top, class_name: json.class_name, config: json.config };
}

type H5 = Awaited<ReturnType<typeof h5wasm>>;
type H5Group = InstanceType<H5['Group']>;

/** Writes `model`'s layers into `group` as Keras lays them out (`layers/<key>/vars/<i>`). */
function writeLayers(group: H5Group, model: LayersModel): void {
  const layersGroup = group.create_group('layers');
  const seen = new Map<string, number>();
  const inSequential = model.getClassName() === 'Sequential';
  for (const layer of model.layers) {
    if (inSequential && layer.getClassName() === 'InputLayer') continue;
    const base = snakeCase(classOf(layer));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const entry = layersGroup.create_group(n === 0 ? base : `${base}_${n}`);
    if (isModel(layer)) {
      writeLayers(entry, layer);
      entry.create_group('vars').create_attribute('name', layer.name);
      continue;
    }
    const vars = entry.create_group('vars');
    vars.create_attribute('name', layer.name);
    layer.weights.forEach((w, i) => {
      const values = w.read().dataSync() as Float32Array;
      vars.create_dataset({ name: String(i), data: values, shape: [...w.shape] as number[], dtype: '<f4' });
    });
  }
}

/**
 * Writes `model` to `file` (a `.keras` archive), atomically; `extra` files go into the archive
 * beside Keras's own (Keras ignores them): featherstack's stacked metadata, say.
 *
 * @example
 * await saveKerasFile(stacked, 'model.keras');
 * // python: keras.saving.load_model('model.keras').predict(x)
 */
export async function saveKerasFile(model: LayersModel, file: string, extra: Record<string, string> = {}): Promise<void> {
  const target = resolve(file);
  checkExportable(model, target);
  const config = kerasConfig(model);
  const lib = await h5wasm();
  const dir = await mkdtemp(join(tmpdir(), 'featherstack-export-'));
  try {
    const h5path = join(dir, 'model.weights.h5');
    const h5 = new lib.File(h5path, 'w');
    try {
      writeLayers(h5, model);
      h5.create_group('vars').create_attribute('name', model.name);
    } finally {
      h5.close();
    }
    const text = (s: string) => new TextEncoder().encode(s);
    const metadata = { keras_version: KERAS_VERSION, date_saved: new Date().toISOString(), written_by: 'featherstack' };
    const archive = zipSync(
      {
        'metadata.json': text(JSON.stringify(metadata)),
        'config.json': text(JSON.stringify(config)),
        'model.weights.h5': new Uint8Array(await readFile(h5path)),
        ...Object.fromEntries(Object.entries(extra).map(([name, content]) => [name, text(content)])),
      },
      { level: 0 },
    );
    await writeFileAtomic(target, archive, 'the Keras file');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
