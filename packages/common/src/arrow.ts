/**
 * Arrow IPC files on disk: the streaming writer every featherstack file goes through (feature
 * files, pixel caches, journals), the framing check readers run first, and the listing of a
 * directory of `.arrow` shard files.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  AsyncByteQueue,
  Message,
  type RecordBatch,
  type RecordBatchFileReader,
  RecordBatchFileWriter,
  RecordBatchReader,
  RecordBatchStreamWriter,
  type Schema,
} from 'apache-arrow';

const MAGIC = 'ARROW1';

/**
 * What is wrong with an Arrow IPC *file* whose first and last six bytes are `head` and `tail`, or
 * null: it starts and ends with ARROW1. apache-arrow reports a file cut short as "Cannot read
 * properties of null (reading 'fieldsLength')", so readers check this first.
 */
export function arrowFramingProblem(head: Uint8Array, tail: Uint8Array, size: number): string | null {
  const magic = (b: Uint8Array) => Buffer.from(b).toString('latin1') === MAGIC;
  if (size < 12 || !magic(head)) return 'is not an Arrow IPC file (it does not start with ARROW1)';
  if (!magic(tail)) return `is truncated or damaged: its ${size} bytes end without the Arrow file footer`;
  return null;
}

/** The framing problem of a file already in memory, or null. */
export function arrowBytesProblem(bytes: Uint8Array): string | null {
  return arrowFramingProblem(bytes.subarray(0, 6), bytes.subarray(Math.max(0, bytes.length - 6)), bytes.length) ?? blocksProblem(bytes);
}

/**
 * What is wrong with the record batch blocks a file's footer lists, or null: each must lie inside
 * the file and hold a record batch message. apache-arrow's reader loops for ever on a block whose
 * message is of another kind (a damaged byte in a schema length does it), so this runs first.
 */
function blocksProblem(bytes: Uint8Array): string | null {
  let reader: RecordBatchFileReader;
  try {
    reader = RecordBatchReader.from(bytes) as RecordBatchFileReader;
    reader.open();
  } catch (error) {
    return `is damaged: its footer cannot be read (${(error as Error).message})`;
  }
  const footer = reader.footer;
  if (!footer) return 'is damaged: it has no footer';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < footer.numRecordBatches; i++) {
    const block = footer.getRecordBatch(i);
    const where = `record batch ${i + 1} of ${footer.numRecordBatches}`;
    if (!block) return `is damaged: its footer lists no ${where}`;
    const offset = Number(block.offset);
    const end = offset + block.metaDataLength + Number(block.bodyLength);
    if (!(offset >= 8 && offset + 8 <= bytes.length && end <= bytes.length)) return `is damaged: its ${where} lies outside the file's ${bytes.length} bytes`;
    const continued = view.getUint32(offset, true) === 0xffffffff;
    const start = offset + (continued ? 8 : 4);
    const length = view.getInt32(offset + (continued ? 4 : 0), true);
    let kind = false;
    try {
      kind = length > 0 && start + length <= end && Message.decode(bytes.subarray(start, start + length)).isRecordBatch();
    } catch {}
    if (!kind) return `is damaged: its ${where} does not hold a record batch message`;
  }
  return null;
}

/** The framing problem of an open file, or null. */
export async function arrowFileProblem(handle: Awaited<ReturnType<typeof open>>): Promise<string | null> {
  const { size } = await handle.stat();
  const head = Buffer.alloc(6);
  const tail = Buffer.alloc(6);
  await handle.read(head, 0, 6, 0);
  await handle.read(tail, 0, 6, Math.max(0, size - 6));
  return arrowFramingProblem(head, tail, size);
}

/**
 * The `*.arrow` files of `dir`, sorted by name (the shards of one extraction), or null when `dir`
 * is not a directory.
 */
export async function listArrowFiles(dir: string): Promise<string[] | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR' || (error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return names
    .filter((f) => f.endsWith('.arrow'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((f) => join(dir, f));
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
