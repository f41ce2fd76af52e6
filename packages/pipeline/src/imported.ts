/**
 * An imported base for `run --base`: a pretrained Keras or tfjs model used frozen, as Keras's
 * feature-extraction recipe uses it. Its input decides the image size and channels; it is cut at
 * the feature layer (named, or the layer feeding its classifier) and pooled as asked.
 */
import { CHANNELS, COLOR_MODES, type ColorMode } from '@featherstack/common';
import { featureExtractor, loadBaseModel, type Pooling, resolveCut } from '@featherstack/core';
import type { LayersModel, Tf } from '@featherstack/tensorflow';
import type { ResolvedRunOptions } from './options.js';

export interface ImportedBase {
  /** The whole imported model (disposing it frees the extractor too). */
  trainer: LayersModel;
  extractor: LayersModel;
  featureLayer: string;
  pooling: Pooling;
  imageSize: [number, number];
  colorMode: ColorMode;
}

/** A model's input: height, width, channels (null where not fixed) and the colour mode giving those channels. */
export function modelInput(model: LayersModel): { height: number | null; width: number | null; channels: number | null; colorMode: ColorMode | undefined } {
  const [height = null, width = null, channels = null] = (model.inputs[0]!.shape as (number | null)[]).slice(1);
  return { height, width, channels, colorMode: COLOR_MODES.find((m) => CHANNELS[m] === channels) };
}

/**
 * The image size and colour mode to read images at for `model` (loaded from `file`): the given
 * ones, else what its input declares, refused by flag name when it declares none or when a given
 * colour mode has other channels than its input.
 */
export function inputImageSettings(
  model: LayersModel,
  file: string,
  given: { targetSize?: [number, number] | undefined; colorMode?: ColorMode | undefined } = {},
): { targetSize: [number, number]; colorMode: ColorMode } {
  const { height, width, channels, colorMode: declared } = modelInput(model);
  if (given.colorMode && channels !== null && CHANNELS[given.colorMode] !== channels)
    throw new Error(`--color-mode ${given.colorMode} gives ${CHANNELS[given.colorMode]} channels, but ${file} takes ${channels}`);
  const colorMode = given.colorMode ?? declared;
  if (!colorMode)
    throw new Error(`--model ${file}: its input has ${channels ?? 'an unknown number of'} channels, which no colour mode gives; give --color-mode`);
  const targetSize = given.targetSize ?? (height && width ? ([height, width] as [number, number]) : undefined);
  if (!targetSize) throw new Error(`--model ${file}: its input has no fixed size; give --image-size`);
  return { targetSize, colorMode };
}

/** The layer whose output a feature extractor returns. */
export function featureLayerOf(extractor: LayersModel): string {
  return (extractor.outputs[0] as unknown as { sourceLayer: { name: string } }).sourceLayer.name;
}

/** keras.applications families by model name, and the preprocess_input mode each expects. */
const FAMILIES: [RegExp, string, string][] = [
  [/^mobilenetv2|^mobilenet_|^inception|^xception|^nasnet/i, 'tf', 'MobileNet/Inception/Xception'],
  [/^resnet\d+$|^vgg/i, 'caffe', 'ResNet/VGG'],
  [/^densenet/i, 'torch', 'DenseNet'],
];

/** Loads `o.base`, checks it against the run's image options, and cuts it. */
export async function importBase(tf: Tf, o: ResolvedRunOptions, log: (line: string) => void): Promise<ImportedBase> {
  const model = await loadBaseModel(tf, o.base!, o.featureLayer);
  model.trainable = false;
  const { height: h, width: w, channels: c, colorMode } = modelInput(model);
  if (!h || !w || !c) {
    model.dispose();
    throw new Error(
      `--base ${o.base}: its input ${JSON.stringify(model.inputs[0]!.shape)} has no fixed height, width and channels; save the model with a fixed input_shape (e.g. (224, 224, 3))`,
    );
  }
  const mismatch = !colorMode
    ? `takes ${c}-channel images, which no colour mode gives`
    : o.given.imageSize && (o.imageSize[0] !== h || o.imageSize[1] !== w)
      ? `takes ${h}×${w} images, not --image-size ${o.imageSize.join('x')}`
      : o.given.colorMode && o.colorMode !== colorMode
        ? `takes ${c}-channel (${colorMode}) images, not --color-mode ${o.colorMode}`
        : undefined;
  if (mismatch) {
    model.dispose();
    throw new Error(`--base ${o.base} ${mismatch} (leave --image-size and --color-mode out to use the model's input)`);
  }
  const cut = resolveCut(model, { featureLayer: o.featureLayer, pooling: o.given.pooling ? o.pooling : undefined });
  const { pooling } = cut;
  log(
    `base: ${o.base}, ${model.layers.length} layers, input ${h}×${w}×${c}, frozen; features from '${cut.layer}' (${cut.reason}), pooling ${pooling}, preprocess ${o.preprocess}`,
  );
  const family = FAMILIES.find(([pattern]) => pattern.test(model.name));
  if (family && o.preprocess !== family[1])
    log(`note: model '${model.name}' looks like a keras.applications ${family[2]}, which expects --preprocess ${family[1]} (this run uses '${o.preprocess}')`);
  return {
    trainer: model,
    extractor: featureExtractor(tf, model, cut.layer, pooling),
    featureLayer: cut.layer,
    pooling,
    imageSize: [h, w],
    colorMode: colorMode!,
  };
}
