/**
 * Arrow views of batch memory. The columns' buffers are the shared batch slot itself: building a
 * RecordBatch copies no pixel.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AsyncByteQueue, Field, FixedSizeList, Float32, Int32, makeData, RecordBatch, RecordBatchFileWriter, RecordBatchStreamWriter, Schema, Struct, Uint8, Utf8, vectorFromArray } from 'apache-arrow';

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

/**
 * Streams RecordBatches into an Arrow IPC file written under a unique `<path>.<pid>-<random>.partial`
 * name and renamed into place by `finish()`, so readers never see a half-written file and two
 * writers of one path never interleave. The writer's byte queue is drained here: apache-arrow's
 * node-stream adapter cannot be torn down mid-file without leaving its pipeline pending forever.
 */
export class ArrowFileWriter {
  private readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  private readonly queue = new AsyncByteQueue();
  private readonly written: Promise<void>;
  /** The first write error, named by file; later calls rethrow it instead of the queue's own. */
  private failure: Error | null = null;
  readonly tmp: string;

  /**
   * With `journal: true` the bytes go straight to `path` in the IPC *stream* format, batch after
   * batch, so a process killed mid-way leaves every complete batch readable there (resumable work);
   * finish() then only flushes.
   */
  constructor(
    readonly path: string,
    schema: Schema,
    private readonly options: { journal?: boolean } = {},
  ) {
    this.writer = options.journal ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    const tmp = options.journal ? path : `${path}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
    this.tmp = tmp;
    this.writer.reset(this.queue, schema);
    const fail = (error: unknown) => {
      // Set before the loop's exit closes the queue, so that write() reports this, not 'AsyncQueue is closed'.
      this.failure ??= new Error(`cannot write ${path}: ${(error as Error).message}`);
      throw this.failure;
    };
    this.written = (async () => {
      let fh: Awaited<ReturnType<typeof open>>;
      try {
        await mkdir(dirname(tmp), { recursive: true });
        fh = await open(tmp, 'w');
      } catch (error) {
        fail(error);
        return;
      }
      try {
        for await (const chunk of this.queue) await fh.write(chunk as Uint8Array).catch(fail);
      } finally {
        await fh.close().catch(() => {});
      }
    })();
    // A failed file is removed (a journal keeps its complete batches); surfaced by write() and finish().
    this.written.catch(() => (options.journal ? undefined : rm(tmp, { force: true }).catch(() => {})));
  }

  /** Queues a batch; its buffers must stay unchanged until written (copy views of reused memory). */
  write(batch: RecordBatch): void {
    if (this.failure) throw this.failure;
    this.writer.write(batch);
  }

  async finish(): Promise<void> {
    if (this.failure) throw this.failure;
    this.writer.close(); // writes the footer (or end-of-stream marker), then closes the queue
    await this.written;
    if (!this.options.journal) {
      try {
        await rename(this.tmp, this.path);
      } catch (error) {
        await rm(this.tmp, { force: true });
        throw new Error(`cannot write ${this.path}: ${(error as Error).message}`);
      }
    }
  }

  /** Journal mode: stops writing, keeping every complete batch in the file. */
  async suspend(): Promise<void> {
    this.queue.close();
    await this.written.catch(() => {});
  }

  async abort(): Promise<void> {
    this.queue.close();
    await this.written.catch(() => {});
    await rm(this.tmp, { force: true });
  }
}
