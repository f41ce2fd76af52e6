/**
 * Model import: Keras 3 `.keras`, legacy Keras `.h5` and tfjs `model.json` files as tfjs
 * LayersModels, with every weight checked against the layer it is set on.
 *
 * Keras models are translated layer by layer into the tfjs topology (Keras 3's config format
 * included) and anything tfjs cannot compute as Keras did is refused by name, never approximated:
 * Lambda and other code-holding layers, custom layers, channels_first, non-float32 dtype policies.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { type LayersModel, ModelFileError, type Tf } from '@featherstack/tensorflow';
import { invalidOption } from '../errors.js';
import { isZip } from './archive.js';
import { registerKerasExtensions } from './extensions.js';
import { isHdf5 } from './hdf5.js';
import { own } from './json.js';
import { loadKerasArchive, loadLegacyH5, loadTfjsModel } from './loaders.js';

export { type ImportSite, ModelImportError } from './errors.js';
export { KERAS_EXTENSION_CLASSES, registerKerasExtensions } from './extensions.js';

type Format = 'keras' | 'h5' | 'tfjs';

const BY_EXTENSION: Record<string, Format> = { '.keras': 'keras', '.h5': 'h5', '.hdf5': 'h5', '.json': 'tfjs' };
const NAMES: Record<Format, string> = { keras: 'a .keras zip archive', h5: 'an HDF5 file', tfjs: 'a tfjs model.json' };

/** The format by the file's first bytes; its name must agree where it says. */
async function formatOf(file: string): Promise<Format> {
  const head = new Uint8Array(8);
  let length: number;
  try {
    const handle = await open(file, 'r');
    try {
      length = (await handle.read(head, 0, 8, 0)).bytesRead;
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new ModelFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (length === 0) throw new ModelFileError(file, 'is empty');
  const byContent: Format | undefined = isZip(head) ? 'keras' : isHdf5(head) ? 'h5' : head[0] === 0x7b ? 'tfjs' : undefined;
  const byName = own(BY_EXTENSION, extname(file).toLowerCase());
  if (byName !== undefined && byContent !== byName) {
    const start = Buffer.from(head.subarray(0, length))
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, '.');
    throw new ModelFileError(file, `is named as ${NAMES[byName]} but is not one (it starts with "${start}")`);
  }
  if (byContent === undefined) throw new ModelFileError(file, 'is neither a .keras archive, an HDF5 file nor a tfjs model.json');
  return byContent;
}

/**
 * Loads a model file as a tfjs LayersModel: a Keras 3 `.keras` archive, a legacy Keras `.h5`
 * (Keras 2 or 3) or a tfjs `model.json`. Rejects with ModelFileError for a missing, truncated or
 * mislabelled file, and with ModelImportError naming the layer, its class and the file for a model
 * that cannot be imported as Keras computes it.
 *
 * @example
 * const tf = loadTensorFlow();
 * const model = await loadModelFile(tf, 'models/mobilenet_v2.keras');
 * const features = tf.model({ inputs: model.inputs, outputs: model.getLayer('global_average_pooling2d').output });
 */
export async function loadModelFile(tf: Tf, path: string): Promise<LayersModel> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('path', 'the path of a .keras, .h5 or model.json file', path);
  registerKerasExtensions(tf);
  const format = await formatOf(path);
  if (format === 'keras') return loadKerasArchive(tf, path);
  if (format === 'h5') return loadLegacyH5(tf, path);
  return loadTfjsModel(tf, path);
}
