/**
 * Stacked inference: the base (up to its feature layer) and the head combined into one tfjs model,
 * saved with the image settings it expects, so images go in and class probabilities come out.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FEATURE_LAYER, parseStackedMetadata, STACKED_METADATA_FILE, type StackedMetadata, writeDirectoryAtomic } from '@featherstack/common';
import { checkModelFiles, type LayersModel, ModelFileError, type Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

/**
 * One model: `base` up to `featureLayer`, then `head`.
 *
 * @example
 * const stacked = stackModels(tf, base, head.model);
 */
export function stackModels(tf: Tf, base: LayersModel, head: LayersModel, featureLayer = FEATURE_LAYER): LayersModel {
  let layer: ReturnType<LayersModel['getLayer']>;
  try {
    layer = base.getLayer(featureLayer);
  } catch {
    throw invalidOption('featureLayer', `a layer of the base model (${base.layers.map((l) => l.name).join(', ')})`, featureLayer);
  }
  const features = layer.output as Parameters<LayersModel['apply']>[0];
  const out = head.apply(features) as never;
  return tf.model({ inputs: base.inputs, outputs: out, name: 'stacked' });
}

/** Saves the model (tfjs layers format) and its metadata into `dir`. */
export async function saveStacked(model: LayersModel, dir: string, metadata: StackedMetadata): Promise<void> {
  // Written beside, then renamed over the previous model: a full disk or a kill mid-write leaves
  // the previous model (or none), never a model.json beside a truncated weights.bin.
  await writeDirectoryAtomic(resolve(dir), 'the stacked model', async (writing) => {
    await model.save(`file://${writing}`);
    await writeFile(join(writing, STACKED_METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`);
  });
}

/** Loads a model saved by saveStacked, with its metadata. */
export async function loadStacked(tf: Tf, dir: string): Promise<{ model: LayersModel; metadata: StackedMetadata }> {
  const target = resolve(dir);
  const metadataFile = join(target, STACKED_METADATA_FILE);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(metadataFile, 'utf8'));
  } catch (error) {
    throw new ModelFileError(metadataFile, `cannot be read as a stacked model's metadata (${(error as Error).message})`);
  }
  const metadata = parseStackedMetadata(json);
  if (typeof metadata === 'string') throw new ModelFileError(metadataFile, metadata);
  await checkModelFiles(join(target, 'model.json'));
  let model: LayersModel;
  try {
    model = await tf.loadLayersModel(`file://${join(target, 'model.json')}`);
  } catch (error) {
    throw new ModelFileError(join(target, 'model.json'), `cannot be loaded as the stacked model (${(error as Error).message.split('\n')[0]})`);
  }
  // Predictions are named by classNames, position by position: a list of another length would
  // drop or invent classes silently.
  const outputs = (model.outputs[0]!.shape as number[]).at(-1);
  if (outputs !== metadata.classNames.length) {
    model.dispose();
    throw new ModelFileError(metadataFile, `names ${metadata.classNames.length} classes but the model in ${join(target, 'model.json')} has ${outputs} outputs`);
  }
  return { model, metadata };
}
