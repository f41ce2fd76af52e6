/**
 * Arrow views of batch memory. The columns' buffers are the shared batch slot itself: building a
 * RecordBatch copies no pixel.
 */
import { Field, FixedSizeList, Float32, Int32, makeData, RecordBatch, Schema, Struct, Uint8, Utf8, vectorFromArray } from 'apache-arrow';

/** Schema of an image batch: image FixedSizeList<float32 | uint8>[h·w·c], label int32, path utf8. */
export function imageBatchSchema(sampleSize: number, metadata: Map<string, string> = new Map(), dtype: 'float32' | 'uint8' = 'float32'): Schema {
  return new Schema(
    [
      new Field('image', new FixedSizeList(sampleSize, new Field('value', dtype === 'uint8' ? new Uint8() : new Float32(), false)), false),
      new Field('label', new Int32(), false),
      new Field('path', new Utf8(), false),
    ],
    metadata,
  );
}

/** A RecordBatch whose `image` and `label` columns view `images` and `labels` without copying. */
export function imageRecordBatch(schema: Schema, images: Float32Array | Uint8Array, labels: Int32Array, paths: string[]): RecordBatch {
  const length = labels.length;
  const listType = schema.fields[0]!.type as FixedSizeList<Float32 | Uint8>;
  const child =
    images instanceof Uint8Array
      ? makeData({ type: new Uint8(), length: images.length, nullCount: 0, data: images })
      : makeData({ type: new Float32(), length: images.length, nullCount: 0, data: images });
  const image = makeData({ type: listType, length, nullCount: 0, child });
  const label = makeData({ type: new Int32(), length, nullCount: 0, data: labels });
  const path = vectorFromArray(paths, new Utf8()).data[0]!;
  const struct = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children: [image, label, path] });
  return new RecordBatch(schema, struct);
}
