/**
 * Feature extraction: runs the trained base up to its feature layer over a flow and streams one
 * Arrow RecordBatch per image batch into an Arrow IPC file. Memory stays constant whatever the
 * dataset size; the file is written under a temporary name and renamed when complete, so a reader
 * never sees a half-written file under the final name.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ImageFlow } from '@featherstack/images';
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import {
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { FEATURE_LAYER } from './model.js';

export interface ExtractOptions {
  /** Layer whose output is the feature vector. Default 'features'. */
  featureLayer?: string;
  /** Extra schema metadata (string values). */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ExtractResult {
  path: string;
  rows: number;
  dimension: number;
  seconds: number;
}

/** Schema of a feature file: path utf8, label int32, features FixedSizeList<float32>[dimension]. */
export function featureSchema(dimension: number, metadata: Map<string, string>): Schema {
  return new Schema(
    [
      new Field('path', new Utf8(), false),
      new Field('label', new Int32(), false),
      new Field('features', new FixedSizeList(dimension, new Field('value', new Float32(), false)), false),
    ],
    metadata,
  );
}

/** A feature RecordBatch over `features` (row-major, rows × dimension) without copying it. */
export function featureRecordBatch(schema: Schema, paths: string[], labels: Int32Array, features: Float32Array): RecordBatch {
  const length = labels.length;
  const listType = schema.fields[2]!.type as FixedSizeList<Float32>;
  const children = [
    vectorFromArray(paths, new Utf8()).data[0]!,
    makeData({ type: new Int32(), length, nullCount: 0, data: labels }),
    makeData({ type: listType, length, nullCount: 0, child: makeData({ type: new Float32(), length: features.length, nullCount: 0, data: features }) }),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/** The sub-model from the base's input to `layer`'s output. */
export function featureExtractor(tf: Tf, model: LayersModel, layer = FEATURE_LAYER): LayersModel {
  const target = model.layers.find((l) => l.name === layer);
  if (!target) {
    throw new Error(`model ${model.name} has no layer named '${layer}' (layers: ${model.layers.map((l) => l.name).join(', ')})`);
  }
  return tf.model({ inputs: model.inputs, outputs: target.output as never, name: 'feature_extractor' });
}

/**
 * Extracts features of every image of `flow` (epoch 0, in the flow's order) into `path`.
 *
 * @example
 * await extractFeatures(tf, featureExtractor(tf, base), valFlow, 'features/val.arrow');
 */
export async function extractFeatures(tf: Tf, extractor: LayersModel, flow: ImageFlow, path: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const started = performance.now();
  const dimension = (extractor.outputs[0]!.shape as number[]).slice(1).reduce((a, b) => a * b, 1);
  const metadata = new Map<string, string>([
    ['featherstack.class_names', JSON.stringify(flow.classNames)],
    ['featherstack.class_indices', JSON.stringify(flow.classIndices)],
    ['featherstack.feature_layer', options.featureLayer ?? FEATURE_LAYER],
    ['featherstack.image', JSON.stringify(flow.image)],
    ['featherstack.augment', JSON.stringify(flow.augment)],
    ['featherstack.created', new Date().toISOString()],
    ...Object.entries(options.metadata ?? {}),
  ]);
  const schema = featureSchema(dimension, metadata);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const writer = new RecordBatchFileWriter();
  writer.reset(undefined, schema);
  const written = pipeline(writer.toNodeStream(), createWriteStream(tmp));
  let rows = 0;
  try {
    for await (const batch of flow.epoch(0, options.signal ? { signal: options.signal } : {})) {
      const features = tf.tidy(() => {
        const x = tf.tensor4d(batch.images, batch.shape);
        return (extractor.predict(x) as Tensor).reshape([batch.size, dimension]);
      });
      const values = (await features.data()) as Float32Array;
      features.dispose();
      writer.write(featureRecordBatch(schema, batch.paths, batch.classIndex.slice(), values));
      rows += batch.size;
    }
    writer.finish();
    await written;
    await rename(tmp, path);
  } catch (error) {
    writer.abort();
    await written.catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
  return { path, rows, dimension, seconds: (performance.now() - started) / 1000 };
}
