/**
 * The three model formats, each read into a tfjs LayersModel: a Keras 3 `.keras` archive, a legacy
 * Keras `.h5` file and a tfjs `model.json`. The two Keras formats share the translation
 * (topology.ts) and the weight assignment (assign.ts) and differ in where the config and the
 * weights are (archive.ts, weights.ts).
 */
import { resolve } from 'node:path';
import { checkModelFiles, type LayersModel, ModelFileError, type Tf } from '@featherstack/tensorflow';
import { readKerasArchive } from './archive.js';
import { assignWeights } from './assign.js';
import { ModelImportError } from './errors.js';
import { openHdf5, openHdf5Bytes } from './hdf5.js';
import { isObject, type JsonObject } from './json.js';
import { resolveKeepdims } from './shapes.js';
import { toTfjsTopology } from './topology.js';
import { kerasV3Weights, legacyWeights, type WeightTable } from './weights.js';

/** 2 or 3 from a version string ('3.15.1', 'tfjs-layers 4.22'…), or undefined. */
function major(version: unknown): 2 | 3 | undefined {
  const text = version instanceof Uint8Array ? new TextDecoder().decode(version) : version;
  const m = typeof text === 'string' ? /^(\d+)\./.exec(text) : null;
  if (m === null) return undefined;
  return Number(m[1]) >= 3 ? 3 : 2;
}

/** Keras 3 writes inbound nodes as {args, kwargs}; Keras 2 as lists. For files without a version. */
function styleOf(model: JsonObject): 2 | 3 {
  const layers = isObject(model.config) && Array.isArray(model.config.layers) ? model.config.layers : [];
  return layers.some((l) => isObject(l) && Array.isArray(l.inbound_nodes) && l.inbound_nodes.some(isObject)) || 'module' in model ? 3 : 2;
}

function first(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0]!;
}

/** Builds the tfjs model from a Keras config and sets its weights from `table()`. */
async function build(tf: Tf, file: string, model: JsonObject, keras: 2 | 3, table: () => WeightTable): Promise<LayersModel> {
  const topology = toTfjsTopology(model, { file, keras });
  await resolveKeepdims(tf, topology, file);
  let built: LayersModel;
  try {
    built = await tf.models.modelFromJSON({ modelTopology: topology });
  } catch (error) {
    throw new ModelImportError({ file }, `tfjs cannot build the translated model: ${first(error)}`);
  }
  try {
    assignWeights(tf, built, table(), file);
  } catch (error) {
    built.dispose();
    throw error;
  }
  return built;
}

/**
 * A Keras 3 `.keras` archive.
 * @internal
 */
export async function loadKerasArchive(tf: Tf, file: string): Promise<LayersModel> {
  const archive = await readKerasArchive(file);
  const keras = major(archive.metadata?.keras_version) ?? 3;
  if (archive.weights === undefined) throw new ModelFileError(file, 'is a .keras archive without model.weights.h5');
  const h5 = await openHdf5Bytes(archive.weights, `${file} (model.weights.h5)`);
  try {
    return await build(tf, file, archive.config, keras, () => kerasV3Weights(h5, archive.config));
  } finally {
    await h5.close();
  }
}

/**
 * A legacy Keras `.h5` file: the model config as the root's `model_config` attribute, the weights
 * under `model_weights`. A weights-only file (`save_weights`) has no config to build from.
 * @internal
 */
export async function loadLegacyH5(tf: Tf, file: string): Promise<LayersModel> {
  const h5 = await openHdf5(file, file);
  try {
    const raw = h5.attribute('/', 'model_config');
    const text = raw instanceof Uint8Array ? new TextDecoder().decode(raw) : raw;
    if (typeof text !== 'string') {
      throw new ModelFileError(file, 'has no model_config attribute: it holds weights only (save_weights), not a model to build');
    }
    let model: unknown;
    try {
      model = JSON.parse(text);
    } catch (error) {
      throw new ModelFileError(file, `has a model_config attribute that is not valid JSON (${first(error)})`);
    }
    if (!isObject(model)) throw new ModelFileError(file, 'has a model_config attribute that is not a JSON object');
    const keras = major(h5.attribute('/', 'keras_version')) ?? styleOf(model);
    return await build(tf, file, model, keras, () => legacyWeights(h5, model));
  } finally {
    await h5.close();
  }
}

/**
 * A tfjs layers `model.json` with its weight files; tfjs itself reads it (quantized uint8, uint16
 * and float16 weight groups included), after @featherstack/tensorflow's check of the files.
 * @internal
 */
export async function loadTfjsModel(tf: Tf, file: string): Promise<LayersModel> {
  await checkModelFiles(file);
  try {
    return await tf.loadLayersModel(`file://${resolve(file)}`);
  } catch (error) {
    throw new ModelImportError({ file }, `tfjs cannot load it: ${first(error)}`);
  }
}
