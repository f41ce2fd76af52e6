/**
 * Where a base is cut for extraction, as Keras's `include_top=False, pooling=…` cuts it: the
 * feature layer (by name; by default `features`, or for an imported classifier the layer that
 * feeds its top), then optional global pooling. And the extraction batch, sized from the
 * activation memory of this model rather than a fixed count.
 */
import { FEATURE_LAYER } from '@featherstack/common';
import type { LayersModel, Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

export type Pooling = 'avg' | 'max' | 'none';
export const POOLINGS: readonly Pooling[] = ['avg', 'max', 'none'];

type Layer = LayersModel['layers'][number];

/** Layers a classifier top may end with after its last weighted layer. */
const TOP_TAIL = new Set(['Activation', 'Softmax', 'Flatten', 'Reshape', 'Dropout']);
const CLASSIFIERS = new Set(['Dense', 'Conv2D']);

function inboundOf(layer: Layer): Layer | undefined {
  const inbound = (layer as unknown as { inboundNodes: { inboundLayers: Layer[] }[] }).inboundNodes[0]?.inboundLayers;
  return inbound?.length === 1 ? inbound[0] : undefined;
}

/**
 * The default feature layer of `model`, and why: `features` where the model has one; for a
 * classifier (its output, past activations, flattening and dropout, comes from one Dense or 1×1
 * Conv2D classifier) the layer that feeds the classifier (past its dropout); else the output layer.
 */
export function defaultFeatureLayer(model: LayersModel): { layer: string; reason: string } {
  if (model.layers.some((l) => l.name === FEATURE_LAYER)) return { layer: FEATURE_LAYER, reason: `the layer named '${FEATURE_LAYER}'` };
  const output = (model.outputs[0] as unknown as { sourceLayer: Layer }).sourceLayer;
  let layer: Layer | undefined = output;
  while (layer && TOP_TAIL.has(layer.getClassName())) layer = inboundOf(layer);
  if (layer && CLASSIFIERS.has(layer.getClassName()) && layer !== model.layers[0]) {
    const classifier = layer;
    let feed = inboundOf(classifier);
    while (feed && feed.getClassName() === 'Dropout') feed = inboundOf(feed);
    if (feed && feed.getClassName() !== 'InputLayer') return { layer: feed.name, reason: `the layer that feeds the top classifier '${classifier.name}'` };
  }
  return { layer: output.name, reason: "the model's output layer" };
}

/**
 * The sub-model from the base's input to `layer`'s output, globally pooled when `pooling` is
 * 'avg' or 'max' (a rank-4 output only), flattened when it is still of rank 3 or more.
 *
 * @example
 * const extractor = featureExtractor(tf, mobilenet, 'out_relu', 'avg'); // Keras: include_top=False, pooling='avg'
 */
export function featureExtractor(tf: Tf, model: LayersModel, layer?: string, pooling: Pooling = 'none'): LayersModel {
  const name = layer ?? defaultFeatureLayer(model).layer;
  const target = model.layers.find((l) => l.name === name);
  if (!target) {
    throw new Error(`model ${model.name} has no layer named '${name}' (layers: ${model.layers.map((l) => l.name).join(', ')})`);
  }
  if (!POOLINGS.includes(pooling)) throw invalidOption('pooling', "'avg', 'max' or 'none'", pooling);
  let output = target.output as ReturnType<typeof tf.input>;
  if (pooling !== 'none') {
    if (output.shape.length !== 4)
      throw invalidOption('pooling', `'none' for layer '${name}', whose output ${JSON.stringify(output.shape)} has no height and width`, pooling);
    const pool =
      pooling === 'avg' ? tf.layers.globalAveragePooling2d({ name: `${name}_avg_pool` }) : tf.layers.globalMaxPooling2d({ name: `${name}_max_pool` });
    output = pool.apply(output) as typeof output;
  }
  // Feature rows are flat (the file's FixedSizeList): a rank-3+ cut is flattened here too, so that
  // the stacked model (extractor + head) computes on exactly what the head trained on.
  if (output.shape.length > 2) output = tf.layers.flatten({ name: `${name}_flatten` }).apply(output) as typeof output;
  return tf.model({ inputs: model.inputs, outputs: output, name: 'feature_extractor' });
}

/**
 * Activation bytes one replica may hold at once during extraction (its share of the batch is sized
 * to fit). Smaller than it need be for speed alone: a session's first run touches all of it for the
 * first time (on this 2-core VM a page fault costs ~6 µs: MobileNetV2 at 224² with 36 images a
 * batch spent 1.7 s on its first batch, with 16 images 0.7 s), and 16 images a replica already
 * run within 6% of 36's steady-state rate.
 */
export const EXTRACTION_ACTIVATION_BUDGET = 192 * 2 ** 20;

/**
 * The extraction batch for `model`: for each of `replicas` replicas (default 1), as many images as
 * keep the largest layer's input and output (float32, per image) within `budget`; at most 256, and
 * a multiple of 8 above 8. Extraction is inference: larger batches amortise per-op overhead but
 * change no feature.
 *
 * @example
 * extractionBatchFor(mobilenetV2At224); // → 16
 * extractionBatchFor(mobilenetV2At224, { replicas: 4 }); // → 64: 16 rows a replica
 */
export function extractionBatchFor(model: LayersModel, options: { replicas?: number; budget?: number } = {}): number {
  const replicas = options.replicas ?? 1;
  const budget = options.budget ?? EXTRACTION_ACTIVATION_BUDGET;
  if (!Number.isInteger(replicas) || replicas < 1) throw invalidOption('replicas', 'a positive integer', replicas);
  if (!(budget > 0)) throw invalidOption('budget', 'a positive number of bytes', budget);
  let peak = 0;
  const size = (shape: unknown) => {
    const s = shape as unknown[];
    return ((Array.isArray(s[0]) ? s[0] : s) as (number | null)[]).slice(1).reduce<number>((a, b) => a * (b ?? 1), 1);
  };
  for (const layer of model.layers) {
    const input = (layer as unknown as { inboundNodes: { inputTensors: { shape: unknown }[] }[] }).inboundNodes[0]?.inputTensors ?? [];
    const bytes = 4 * (size(layer.outputShape) + input.reduce((a, t) => a + size(t.shape), 0));
    peak = Math.max(peak, bytes);
  }
  const fit = Math.min(256, replicas * Math.max(1, Math.floor(budget / Math.max(peak, 1))));
  return fit > 8 ? fit - (fit % 8) : fit;
}
