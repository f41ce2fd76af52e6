/**
 * `featherstack inspect`: a summary of an Arrow file — a feature file, a pixel cache or any Arrow
 * IPC file: rows, schema, metadata and, where there are labels, the class balance. Reads record
 * batch by record batch, so a file larger than memory is fine.
 */
import { open } from 'node:fs/promises';
import { arrowFileProblem, FEATURE_COLUMNS, PIXEL_CACHE_METADATA, readFeatureSchema } from '@featherstack/common';
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
    const framing = await arrowFileProblem(handle);
    if (framing) throw new Error(`inspect: ${path} ${framing}`);
    let reader: AsyncRecordBatchFileReader;
    try {
      reader = (await RecordBatchReader.from(handle)) as unknown as AsyncRecordBatchFileReader;
      await reader.open({ autoDestroy: false });
    } catch (error) {
      throw new Error(`inspect: ${path} is not a readable Arrow IPC file (${(error as Error).message})`);
    }
    const metadata = Object.fromEntries(reader.schema.metadata);
    const names = reader.schema.fields.map((f) => f.name);
    const kind = metadata[PIXEL_CACHE_METADATA]
      ? 'pixel-cache'
      : names.includes(FEATURE_COLUMNS.features) && names.includes(FEATURE_COLUMNS.label)
        ? 'features'
        : 'arrow';
    // A feature file is checked as the head reads it; other Arrow files are shown as they are.
    const schema = kind === 'features' ? readFeatureSchema(reader.schema) : undefined;
    if (typeof schema === 'string') throw new Error(`inspect: ${path} ${schema}`);
    const classNames = schema?.classNames ?? [];
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
