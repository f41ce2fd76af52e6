/**
 * Stacked inference: the base (up to its feature layer) and the head combined into one tfjs model,
 * saved with the image settings it expects, so images go in and class probabilities come out.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkModelFiles, type LayersModel, ModelFileError, type Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

/** What a stacked model needs to know about its input images (saved as featherstack.json). */
export interface StackedMetadata {
  format: 1;
  classNames: string[];
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  colorMode: 'grayscale' | 'rgb' | 'rgba';
  interpolation: string;
  rescale: number;
  featureLayer: string;
}

/**
 * One model: `base` up to `featureLayer`, then `head`.
 *
 * @example
 * const stacked = stackModels(tf, base, head.model);
 */
export function stackModels(tf: Tf, base: LayersModel, head: LayersModel, featureLayer = 'features'): LayersModel {
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
  const target = resolve(dir);
  // Written beside, then renamed over the previous model: a full disk or a kill mid-write leaves
  // the previous model (or none), never a model.json beside a truncated weights.bin.
  const writing = `${target}.writing`;
  await rm(writing, { recursive: true, force: true });
  try {
    await mkdir(writing, { recursive: true });
    await model.save(`file://${writing}`);
    await writeFile(join(writing, 'featherstack.json'), `${JSON.stringify(metadata, null, 2)}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(writing, target);
  } catch (error) {
    await rm(writing, { recursive: true, force: true });
    throw new Error(`cannot write the stacked model ${target}: ${(error as Error).message}`);
  }
}

/** Loads a model saved by saveStacked, with its metadata. */
export async function loadStacked(tf: Tf, dir: string): Promise<{ model: LayersModel; metadata: StackedMetadata }> {
  const target = resolve(dir);
  let metadata: StackedMetadata;
  try {
    metadata = JSON.parse(await readFile(join(target, 'featherstack.json'), 'utf8')) as StackedMetadata;
  } catch (error) {
    throw new ModelFileError(join(target, 'featherstack.json'), `cannot be read as a stacked model's metadata (${(error as Error).message})`);
  }
  if (metadata.format !== 1 || !Array.isArray(metadata.classNames)) throw new ModelFileError(join(target, 'featherstack.json'), 'is not featherstack stacked-model metadata (format 1)');
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
    throw new ModelFileError(join(target, 'featherstack.json'), `names ${metadata.classNames.length} classes but the model in ${join(target, 'model.json')} has ${outputs} outputs`);
  }
  return { model, metadata };
}
