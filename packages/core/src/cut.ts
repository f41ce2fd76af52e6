/**
 * Where a base is cut for extraction, as Keras's `include_top=False, pooling=…` cuts it: the
 * feature layer (by name; by default `features`, or for an imported classifier the layer that
 * feeds its top), then optional global pooling. And the extraction batch, sized from the
 * activation memory of this model rather than a fixed count.
 */
import { FEATURE_LAYER } from '@featherstack/common';
import { type JpegDecoderInfo, jpegDecoder } from '@featherstack/images';
import type { LayersModel, Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';

export const POOLINGS = ['avg', 'max', 'none'] as const;
export type Pooling = (typeof POOLINGS)[number];

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
  const recorded = recordedCut(model);
  if (recorded && model.layers.some((l) => l.name === recorded.featureLayer))
    return { layer: recorded.featureLayer, reason: 'recorded in the model file by train-base' };
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
  const target = checkCut(model, name, pooling);
  let output = target.output as ReturnType<typeof tf.input>;
  if (pooling !== 'none') {
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
 * The layer `model` is cut at, or an error naming what is wrong: no layer of that name (the
 * error lists them), an unknown pooling, or pooling on an output with no height and width.
 * Checked before anything is trained or extracted.
 */
export function checkCut(model: LayersModel, layer: string, pooling: Pooling): Layer {
  const target = model.layers.find((l) => l.name === layer);
  if (!target) throw invalidOption('featureLayer', `a layer of model '${model.name}' (layers: ${model.layers.map((l) => l.name).join(', ')})`, layer);
  if (!POOLINGS.includes(pooling)) throw invalidOption('pooling', "'avg', 'max' or 'none'", pooling);
  const shape = (target.output as { shape: unknown[] }).shape;
  if (pooling !== 'none' && shape.length !== 4)
    throw invalidOption('pooling', `'none' for layer '${layer}', whose output ${JSON.stringify(shape)} has no height and width`, pooling);
  return target;
}

const CUT_KEY = 'featherstack';

/**
 * Records where `model` is cut for extraction in its own metadata (model.json's
 * userDefinedMetadata), so that `extract` and a later `run --base` cut a trained base where its
 * training said, without flags.
 */
export function recordCut(model: LayersModel, cut: { featureLayer: string; pooling: Pooling }): void {
  model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), [CUT_KEY]: { featureLayer: cut.featureLayer, pooling: cut.pooling } });
}

/** The cut recorded by recordCut, when the model file holds a well-formed one. */
export function recordedCut(model: LayersModel): { featureLayer: string; pooling: Pooling } | undefined {
  return parseRecordedCut(model.getUserDefinedMetadata());
}

/**
 * Where `model` is cut, and why: `given` where given, else what train-base recorded in the model
 * file (its pooling only with its own layer), else the default layer without pooling.
 */
export function resolveCut(model: LayersModel, given: { featureLayer?: string | undefined; pooling?: Pooling | undefined }) {
  const { layer, reason } = given.featureLayer !== undefined ? { layer: given.featureLayer, reason: '--feature-layer' } : defaultFeatureLayer(model);
  return { layer, reason, pooling: recordedPooling(recordedCut(model), layer, given.pooling) };
}

/**
 * The pooling of a cut at `layer` (undefined: the model's default layer, which a recorded cut
 * names): `given`, else the recorded pooling when the cut is the recorded one, else 'none'.
 */
export function recordedPooling(recorded: { featureLayer: string; pooling: Pooling } | undefined, layer: string | undefined, given?: Pooling): Pooling {
  return given ?? (recorded && (layer === undefined || layer === recorded.featureLayer) ? recorded.pooling : 'none');
}

/**
 * The cut recordCut wrote into `userDefinedMetadata` (a model.json's, read without loading the
 * model: the queue's coordinator does), or undefined when there is none or it is malformed.
 */
export function parseRecordedCut(userDefinedMetadata: unknown): { featureLayer: string; pooling: Pooling } | undefined {
  const entry = (userDefinedMetadata as Record<string, unknown> | undefined)?.[CUT_KEY] as { featureLayer?: unknown; pooling?: unknown } | undefined;
  if (typeof entry?.featureLayer !== 'string' || !POOLINGS.includes(entry.pooling as Pooling)) return undefined;
  return { featureLayer: entry.featureLayer, pooling: entry.pooling as Pooling };
}

/** A layer shape (or the first of a list of shapes) without its batch dimension. @internal */
export function perImageShape(shape: unknown): (number | null)[] {
  const s = shape as unknown[];
  return ((Array.isArray(s[0]) ? s[0] : s) as (number | null)[]).slice(1);
}

/** Values per image of a layer shape (unknown dimensions count 1). @internal */
export function perImageSize(shape: unknown): number {
  return perImageShape(shape).reduce<number>((a, b) => a * (b ?? 1), 1);
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
 * The extraction batch for `model`: as many images as keep the largest layer's input and output
 * (float32, per image) within `budget`, shared by the machine's `replicas` (default 1), but at
 * least 8 a replica where one budget holds 8; at most 256, and a multiple of 8 above 8. Extraction
 * is inference: larger batches amortise per-op overhead but change no feature. Measured with
 * MobileNetV2 at 224² on 2 one-thread replicas: 8 images a replica extracted as fast as 16 (139–143
 * against 138 images/s) with 350 MB less peak memory.
 *
 * @example
 * extractionBatchFor(mobilenetV2At224); // → 16
 * extractionBatchFor(mobilenetV2At224, { replicas: 4 }); // → 32: 8 rows a replica
 */
export function extractionBatchFor(model: LayersModel, options: { replicas?: number; budget?: number } = {}): number {
  const replicas = options.replicas ?? 1;
  const budget = options.budget ?? EXTRACTION_ACTIVATION_BUDGET;
  if (!Number.isInteger(replicas) || replicas < 1) throw invalidOption('replicas', 'a positive integer', replicas);
  if (!(budget > 0)) throw invalidOption('budget', 'a positive number of bytes', budget);
  let peak = 0;
  for (const layer of model.layers) {
    const input = (layer as unknown as { inboundNodes: { inputTensors: { shape: unknown }[] }[] }).inboundNodes[0]?.inputTensors ?? [];
    const bytes = 4 * (perImageSize(layer.outputShape) + input.reduce((a, t) => a + perImageSize(t.shape), 0));
    peak = Math.max(peak, bytes);
  }
  const fits = Math.floor(budget / Math.max(peak, 1));
  const perReplica = Math.max(1, Math.min(8, fits), Math.floor(fits / replicas));
  const fit = Math.min(256, replicas * perReplica);
  return fit > 8 ? fit - (fit % 8) : fit;
}

/**
 * Multiply-accumulates of one image through `model`'s convolutions and dense layers (nested models
 * included): what the extraction's TensorFlow threads spend their time on.
 */
export function multiplyAccumulates(model: LayersModel): number {
  let macs = 0;
  const visit = (layers: Layer[]) => {
    for (const layer of layers) {
      const nested = (layer as unknown as { layers?: Layer[] }).layers;
      if (nested) {
        visit(nested);
        continue;
      }
      const config = layer.getConfig() as { kernelSize?: number[]; depthMultiplier?: number };
      const kind = layer.getClassName();
      const out = perImageShape(layer.outputShape);
      const input = perImageShape(
        (layer as unknown as { inboundNodes: { inputTensors: { shape: unknown }[] }[] }).inboundNodes[0]?.inputTensors[0]?.shape ?? [],
      );
      const cin = input[input.length - 1] ?? 0;
      const cout = out[out.length - 1] ?? 0;
      const positions = out.slice(0, -1).reduce<number>((a, b) => a * (b ?? 1), 1);
      const kernel = (config.kernelSize ?? [1, 1]).reduce((a, b) => a * b, 1);
      if (kind === 'Conv2D') macs += positions * kernel * cin * cout;
      else if (kind === 'DepthwiseConv2D') macs += positions * kernel * cout;
      else if (kind === 'SeparableConv2D') macs += positions * (kernel * cin * (config.depthMultiplier ?? 1) + cin * (config.depthMultiplier ?? 1) * cout);
      else if (kind === 'Dense') macs += positions * cin * cout;
    }
  };
  visit(model.layers);
  return macs;
}

/**
 * Core-milliseconds per image measured on this project's 2-core machine (AMD EPYC, AVX-512), the
 * cost model extractionWorkers divides the cores by: decoding a 500×375 JPEG to 224² with
 * preprocess 'tf' on one decode worker (1.0 ms through libjpeg-turbo directly, 3.6 through libvips
 * where the images package's JPEG addon is not built), and TensorFlow's rate on the compiled graph
 * (MobileNetV2 61, ResNet50 118 GFLOP/s a core: 80 taken).
 */
export const EXTRACTION_COSTS = { decodeMsAt224: { 'libjpeg-turbo': 1.0, libvips: 3.6 }, gflopsPerCore: 80 } as const;

/**
 * Decode workers for extracting with `model` on `cores` cores: the cores split between decoding
 * and TensorFlow in proportion to their cost per image (at least 1). A light backbone gets more
 * workers than a heavy one: MobileNetV2 (0.6 GFLOP an image) gets 1 on 2 cores and 2 on 16 with
 * libjpeg-turbo decoding (its 1 ms against TensorFlow's 7.5), 5 on 16 through libvips.
 *
 * @example
 * extractionWorkers(mobilenetV2At224, 16); // → 2
 */
export function extractionWorkers(model: LayersModel, cores: number, decoder: JpegDecoderInfo['decoder'] = jpegDecoder().decoder): number {
  const [h, w] = ((model.inputs[0]!.shape as (number | null)[]).slice(1, 3) as number[]).map((v) => v ?? 224) as [number, number];
  const decode = EXTRACTION_COSTS.decodeMsAt224[decoder] * Math.max(0.2, (h * w) / (224 * 224));
  const compute = ((2 * multiplyAccumulates(model)) / (EXTRACTION_COSTS.gflopsPerCore * 1e9)) * 1000;
  return Math.max(1, Math.min(cores, Math.round((cores * decode) / (decode + compute))));
}
