/**
 * Training data larger than memory: feature files read record batch by record batch (Arrow's file
 * reader over a file handle: the footer first, then one batch at a time), in a seeded file order,
 * through a seeded shuffle buffer of `shuffleBuffer` rows. Memory is the buffer plus one record
 * batch, whatever the files hold.
 */
import { open } from 'node:fs/promises';
import {
  arrowFileProblem,
  CounterRng,
  DEFAULT_SEED,
  FEATURE_COLUMNS as COLUMNS,
  readFeatureSchema,
  type ShardFile,
  Stream,
  shardSetProblem,
} from '@featherstack/common';
import { type AsyncRecordBatchFileReader, RecordBatchReader } from 'apache-arrow';
import { FeatureFileError, invalidOption } from './errors.js';
import { assertFinite, assertLabels, assertNoNulls, commonBaseModel, featureFiles, int32Labels } from './features.js';

export interface FeatureStream {
  kind: 'stream';
  files: string[];
  dimension: number;
  classNames: string[];
  /** FEATURE_METADATA.baseModelSha256 of the files (checked to agree), when they record it. */
  baseModel?: string;
  batchSize: number;
  /** The batches of one epoch, shuffled through the buffer with the epoch's seed. */
  batches(epoch: number): AsyncGenerator<{ rows: number; features: Float32Array; labels: Int32Array }>;
}

async function reader(path: string): Promise<{ reader: AsyncRecordBatchFileReader; close(): Promise<void> }> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new FeatureFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const framing = await arrowFileProblem(handle).catch((error: Error) => error.message);
  if (framing) {
    await handle.close();
    throw new FeatureFileError(path, framing);
  }
  try {
    const r = (await RecordBatchReader.from(handle)) as unknown as AsyncRecordBatchFileReader;
    await r.open({ autoDestroy: false });
    if (!r.isFile()) throw new Error('not in the Arrow IPC file format');
    return { reader: r, close: () => handle.close() };
  } catch (error) {
    await handle.close();
    throw new FeatureFileError(path, `is not a readable Arrow IPC file (${(error as Error).message})`);
  }
}

/**
 * Opens feature files (or every `*.arrow` in a directory) as a stream for trainHead.
 *
 * @example
 * const train = await openFeatureStream('features/train-shards', { shuffleBuffer: 8192, seed: 1 });
 * await trainHead(tf, train, await readFeatureFile('features/val.arrow'));
 */
export async function openFeatureStream(
  input: string | string[],
  options: { shuffleBuffer?: number; batchSize?: number; seed?: number } = {},
): Promise<FeatureStream> {
  const shuffleBuffer = options.shuffleBuffer ?? 4096;
  if (!Number.isInteger(shuffleBuffer) || shuffleBuffer < 1) throw invalidOption('shuffleBuffer', 'a positive integer (rows)', shuffleBuffer);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidOption('batchSize', 'a positive integer', batchSize);
  const seed = options.seed ?? DEFAULT_SEED;
  const files = await featureFiles(input);
  // Schemas only (read from the footers): dimension and classes of every file, checked to agree.
  let dimension = -1;
  let classNames: string[] = [];
  const shardFiles: ShardFile[] = [];
  for (const file of files) {
    const { reader: r, close } = await reader(file);
    try {
      const schema = readFeatureSchema(r.schema);
      if (typeof schema === 'string') throw new FeatureFileError(file, schema);
      const { dimension: d, classNames: names, shard } = schema;
      shardFiles.push({ path: file, shard, model: schema.baseModel });
      if (dimension === -1) [dimension, classNames] = [d, names];
      else if (d !== dimension) throw new FeatureFileError(file, `has ${d}-dimensional features but ${files[0]} has ${dimension}`);
      else if (JSON.stringify(names) !== JSON.stringify(classNames))
        throw new FeatureFileError(file, `has classes ${JSON.stringify(names)} but ${files[0]} has ${JSON.stringify(classNames)}`);
    } finally {
      await close();
    }
  }
  // Shards of a distributed extraction are trusted only as a complete set (every shard once, one model).
  const problem = shardSetProblem(shardFiles);
  if (problem) throw new FeatureFileError(Array.isArray(input) ? input.join(', ') : input, problem);
  const baseModel = commonBaseModel(shardFiles.map((f) => ({ path: f.path, baseModel: f.model })));
  return {
    kind: 'stream',
    files,
    dimension,
    classNames,
    ...(baseModel ? { baseModel } : {}),
    batchSize,
    async *batches(epoch) {
      // The seeded RNG keyed by (seed, epoch): the same sequence for the same seed and epoch.
      const rng = new CounterRng(seed, epoch, 0, Stream.headBuffer);
      const random = () => rng.next();
      const order = files
        .map((f) => ({ f, k: random() }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.f);
      const d = dimension;
      const bufFeatures = new Float32Array(shuffleBuffer * d);
      const bufLabels = new Int32Array(shuffleBuffer);
      let filled = 0;
      let out = { rows: 0, features: new Float32Array(batchSize * d), labels: new Int32Array(batchSize) };
      const emit = (i: number) => {
        out.features.set(bufFeatures.subarray(i * d, (i + 1) * d), out.rows * d);
        out.labels[out.rows++] = bufLabels[i]!;
      };
      for (const file of order) {
        const { reader: r, close } = await reader(file);
        let rowsRead = 0;
        try {
          for (let b = 0; b < r.numRecordBatches; b++) {
            const batch = (await r.readRecordBatch(b))!;
            const values = batch.getChild(COLUMNS.features)!.data[0]!.children[0]!.values as Float32Array;
            const offset = batch.getChild(COLUMNS.features)!.data[0]!.offset * d;
            const imageOf = (row: number) => batch.getChild(COLUMNS.path)?.get(row - rowsRead) ?? undefined;
            assertNoNulls(file, { [COLUMNS.label]: batch.getChild(COLUMNS.label)!, [COLUMNS.features]: batch.getChild(COLUMNS.features)! }, rowsRead, imageOf);
            const labels = int32Labels(file, batch.getChild(COLUMNS.label)!.toArray() as ArrayLike<number | bigint>, rowsRead, imageOf);
            assertLabels(file, labels, classNames, rowsRead, imageOf);
            assertFinite(file, values.subarray(offset, offset + batch.numRows * d), d, rowsRead, imageOf);
            rowsRead += batch.numRows;
            for (let row = 0; row < batch.numRows; row++) {
              let slot = filled;
              if (filled < shuffleBuffer) filled++;
              else {
                // Buffer full: a random row leaves for the batch, the new row takes its place.
                slot = Math.floor(random() * shuffleBuffer);
                emit(slot);
                if (out.rows === batchSize) {
                  yield out;
                  out = { rows: 0, features: new Float32Array(batchSize * d), labels: new Int32Array(batchSize) };
                }
              }
              bufFeatures.set(values.subarray(offset + row * d, offset + (row + 1) * d), slot * d);
              bufLabels[slot] = labels[row]!;
            }
          }
        } finally {
          await close();
        }
      }
      // Drain what is left in random order.
      const rest = Array.from({ length: filled }, (_, i) => i);
      for (let i = rest.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [rest[i], rest[j]] = [rest[j]!, rest[i]!];
      }
      for (const i of rest) {
        emit(i);
        if (out.rows === batchSize) {
          yield out;
          out = { rows: 0, features: new Float32Array(batchSize * d), labels: new Int32Array(batchSize) };
        }
      }
      if (out.rows > 0) yield { rows: out.rows, features: out.features.subarray(0, out.rows * d), labels: out.labels.subarray(0, out.rows) };
    },
  };
}
