/**
 * `featherstack inspect`: a summary of an Arrow file — a feature file, a pixel cache or any Arrow
 * IPC file: rows, schema, metadata and, where there are labels, the class balance. Reads record
 * batch by record batch, so a file larger than memory is fine.
 */
import { open } from 'node:fs/promises';
import { type AsyncRecordBatchFileReader, RecordBatchReader } from 'apache-arrow';

export interface Inspection {
  path: string;
  kind: 'features' | 'pixel-cache' | 'arrow';
  rows: number;
  recordBatches: number;
  schema: { name: string; type: string; nullable: boolean }[];
  metadata: Record<string, string>;
  /** Rows per class (feature files: by class name when the file names its classes). */
  classBalance?: Record<string, number>;
  /** Pixel caches: samples whose decoding failed when the cache was built. */
  failedSamples?: number;
}

export async function inspect(path: string): Promise<Inspection> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new Error(`inspect: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const magic = Buffer.alloc(6);
    await handle.read(magic, 0, 6, 0);
    if (magic.toString('latin1') !== 'ARROW1') throw new Error(`inspect: ${path} is not an Arrow IPC file (it does not start with ARROW1)`);
    const { size } = await handle.stat();
    const tail = Buffer.alloc(6);
    await handle.read(tail, 0, 6, Math.max(0, size - 6));
    if (size < 12 || tail.toString('latin1') !== 'ARROW1') throw new Error(`inspect: ${path} is truncated or damaged: its ${size} bytes end without the Arrow file footer`);
    let reader: AsyncRecordBatchFileReader;
    try {
      reader = (await RecordBatchReader.from(handle)) as unknown as AsyncRecordBatchFileReader;
      await reader.open({ autoDestroy: false });
    } catch (error) {
      throw new Error(`inspect: ${path} is not a readable Arrow IPC file (${(error as Error).message})`);
    }
    const metadata = Object.fromEntries(reader.schema.metadata);
    const names = reader.schema.fields.map((f) => f.name);
    const kind = metadata['featherstack.pixel_cache'] ? 'pixel-cache' : names.includes('features') && names.includes('label') ? 'features' : 'arrow';
    const classNames = metadata['featherstack.class_names'] ? (JSON.parse(metadata['featherstack.class_names']) as string[]) : [];
    const counts = new Map<number, number>();
    let rows = 0;
    let failed = 0;
    for (let i = 0; i < reader.numRecordBatches; i++) {
      const batch = (await reader.readRecordBatch(i))!;
      rows += batch.numRows;
      if (kind === 'features') for (const label of batch.getChild('label')!.toArray() as Int32Array) counts.set(label, (counts.get(label) ?? 0) + 1);
      if (kind === 'pixel-cache') failed += batch.getChild('error')!.data.reduce((n, d) => n + (d.length - d.nullCount), 0);
    }
    const result: Inspection = {
      path,
      kind,
      rows,
      recordBatches: reader.numRecordBatches,
      schema: reader.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
      metadata,
    };
    if (kind === 'features') {
      result.classBalance = Object.fromEntries([...counts].sort((a, b) => a[0] - b[0]).map(([label, n]) => [classNames[label] ?? String(label), n]));
    }
    if (kind === 'pixel-cache') result.failedSamples = failed;
    return result;
  } finally {
    await handle.close();
  }
}
