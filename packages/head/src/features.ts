/**
 * Reading Arrow feature files written by @featherstack/core. Every structural problem is reported
 * with the file's path.
 */
import { readFile } from 'node:fs/promises';
import { arrowBytesProblem, FEATURE_COLUMNS as COLUMNS, listArrowFiles, readFeatureSchema, type ShardInfo, shardSetProblem } from '@featherstack/common';
import { type Table, tableFromIPC } from 'apache-arrow';
import { FeatureFileError } from './errors.js';

export interface FeatureSet {
  path: string;
  rows: number;
  dimension: number;
  /** rows × dimension, row-major. */
  features: Float32Array;
  labels: Int32Array;
  paths: string[];
  classNames: string[];
  /** [timesteps, size] when the file declares its rows sequences (`featherstack.sequence`). */
  sequence?: [number, number];
  /** Which shard of a distributed extraction the file is, and the base model's sha256. */
  shard?: ShardInfo;
  baseModel?: string;
}

/**
 * Loads a feature file into memory.
 *
 * @example
 * const train = await readFeatureFile('run/features/train.arrow');
 */
/**
 * The files `input` names: itself, each of a list, or every `*.arrow` file of a directory sorted
 * by name (the shards of one extraction). @internal
 */
export async function featureFiles(input: string | string[]): Promise<string[]> {
  if (Array.isArray(input)) return input;
  const listed = await listArrowFiles(input);
  if (listed === null) return [input];
  if (listed.length === 0) throw new FeatureFileError(input, 'holds no .arrow feature files');
  return listed;
}

export async function readFeatureFile(path: string): Promise<FeatureSet> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new FeatureFileError(path, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const framing = arrowBytesProblem(bytes);
  if (framing) throw new FeatureFileError(path, framing);
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new FeatureFileError(path, `is not a readable Arrow IPC file (${(error as Error).message})`);
  }
  const schema = readFeatureSchema(table.schema);
  if (typeof schema === 'string') throw new FeatureFileError(path, schema);
  const { dimension, classNames, sequence, shard, baseModel } = schema;
  const featuresColumn = table.getChild(COLUMNS.features)!;
  const labelColumn = table.getChild(COLUMNS.label)!;
  const rows = table.numRows;
  if (rows === 0) throw new FeatureFileError(path, 'has no rows (an extraction that stopped before its first batch, or an empty dataset)');
  // A damaged row count would have every check below walk billions of rows: each row's features
  // take 4 bytes a value, so the file bounds them.
  if (rows * dimension * 4 > bytes.length)
    throw new FeatureFileError(path, `is damaged: it claims ${rows} rows of ${dimension} features, more than its ${bytes.length} bytes hold`);
  const pathColumn = table.getChild(COLUMNS.path);
  const imageOf = (row: number) => (pathColumn ? String(pathColumn.get(row)) : undefined);
  assertNoNulls(path, { [COLUMNS.label]: labelColumn, [COLUMNS.features]: featuresColumn }, 0, imageOf);
  const features = new Float32Array(rows * dimension);
  let offset = 0;
  for (const data of featuresColumn.data) {
    const values = data.children[0]!.values as Float32Array;
    const start = data.offset * dimension;
    // A damaged buffer reads as a short one, which subarray would pad with zeros without a word.
    if (!(values instanceof Float32Array) || values.length < start + data.length * dimension)
      throw new FeatureFileError(
        path,
        `is damaged: its features buffer holds ${values?.length ?? 0} values where its rows need ${start + data.length * dimension}`,
      );
    features.set(values.subarray(start, start + data.length * dimension), offset);
    offset += data.length * dimension;
  }
  const labelValues = labelColumn.toArray() as ArrayLike<number | bigint>;
  if (labelValues.length !== rows) throw new FeatureFileError(path, `is damaged: its label column holds ${labelValues.length} values for ${rows} rows`);
  const labels = int32Labels(path, labelValues, 0, imageOf);
  assertFinite(path, features, dimension, 0, imageOf);
  assertLabels(path, labels, classNames, 0, imageOf);
  return {
    path,
    rows,
    dimension,
    features,
    labels,
    paths: pathColumn ? (pathColumn.toArray() as string[]) : [],
    classNames,
    ...(sequence ? { sequence } : {}),
    ...(shard ? { shard } : {}),
    ...(baseModel ? { baseModel } : {}),
  };
}

/**
 * Refuses a null label or feature vector by file, row and image: Arrow readers hand nulls out as
 * zeros, and the head would train on them. `columns` are a table's or a record batch's, whose first
 * row is `firstRow` of the file. @internal
 */
export function assertNoNulls(
  path: string,
  columns: Record<string, { nullCount: number; length: number; isValid(row: number): boolean }>,
  firstRow: number,
  imageOf: (row: number) => string | undefined,
): void {
  for (const [name, column] of Object.entries(columns)) {
    if (column.nullCount === 0) continue;
    let row = 0;
    while (row < column.length && column.isValid(row)) row++;
    const image = imageOf(firstRow + row);
    throw new FeatureFileError(
      path,
      `row ${firstRow + row}${image ? ` (${image})` : ''} has a null ${name}: every row needs a label and a full feature vector`,
    );
  }
}

/**
 * The base model (FEATURE_METADATA.baseModelSha256) that extracted every one of `sets`, or
 * undefined when none records one. Refuses sets from two different models (a file that records
 * none, written by another tool, is taken on trust): features of two bases mean different things in the same positions, and a head
 * trained on one and scored on the other sits at chance without a word. @internal
 */
export function commonBaseModel(sets: { path: string; baseModel?: string | undefined }[]): string | undefined {
  const first = sets.find((s) => s.baseModel !== undefined);
  for (const s of sets) {
    if (s.baseModel === undefined || s.baseModel === first!.baseModel) continue;
    throw new FeatureFileError(
      s.path,
      `was extracted by base model ${s.baseModel.slice(0, 12)}… but ${first!.path} by ${first!.baseModel!.slice(0, 12)}…: features of different bases cannot train or score one head (re-extract both with the same base)`,
    );
  }
  return first?.baseModel;
}

/**
 * A label column (int8…int64) as Int32Array, refusing a value no class index can be (an int64
 * beyond 2³¹−1) by file, row and image. @internal
 */
export function int32Labels(path: string, values: ArrayLike<number | bigint>, firstRow: number, imageOf: (row: number) => string | undefined): Int32Array {
  if (values instanceof Int32Array) return values;
  const labels = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = Number(values[i]!);
    if (!Number.isSafeInteger(value) || value < -(2 ** 31) || value >= 2 ** 31) {
      const image = imageOf(firstRow + i);
      throw new FeatureFileError(path, `row ${firstRow + i}${image ? ` (${image})` : ''} has label ${String(values[i])}, which is no class index`);
    }
    labels[i] = value;
  }
  return labels;
}

/**
 * Refuses a label that names no class: negative (an unlabelled row) or, when the file names its
 * classes, not below their count. A head built from such a file would invent the missing classes.
 * @internal
 */
export function assertLabels(path: string, labels: Int32Array, classNames: string[], firstRow: number, imageOf: (row: number) => string | undefined): void {
  const limit = classNames.length > 0 ? classNames.length : 2 ** 31;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label >= 0 && label < limit) continue;
    const image = imageOf(firstRow + i);
    const what =
      label < 0
        ? 'an unlabelled row (a head trains on labelled rows only)'
        : `no class of the ${classNames.length} the file names (${JSON.stringify(classNames).slice(0, 120)}): labels are indices 0–${classNames.length - 1}`;
    throw new FeatureFileError(path, `row ${firstRow + i}${image ? ` (${image})` : ''} has label ${label}, ${what}`);
  }
}

/**
 * Refuses a non-finite feature value (NaN, ±Infinity) by file, row and image: one such value turns
 * the head's loss into NaN, and training "completes" with meaningless scores.
 * @internal
 */
export function assertFinite(path: string, values: Float32Array, dimension: number, firstRow: number, imageOf: (row: number) => string | undefined): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i]!)) continue;
    const row = firstRow + Math.floor(i / dimension);
    const image = imageOf(row);
    throw new FeatureFileError(
      path,
      `row ${row}${image ? ` (${image})` : ''} has a non-finite feature value (${values[i]} at position ${i % dimension}); re-extract it, or drop the row`,
    );
  }
}

/**
 * Reads several feature files — or every `*.arrow` file of a directory, in code-point order (the
 * shards of one extraction) — as one dataset: rows in file order, one dimension and one class list.
 *
 * @example
 * const train = await readFeatureFiles('run/features/train-shards');
 */
export async function readFeatureFiles(input: string | string[]): Promise<FeatureSet> {
  const files = await featureFiles(input);
  const sets = await Promise.all(files.map((f) => readFeatureFile(f)));
  // Shards of a distributed extraction are trusted only as a complete set (every shard once, one model).
  const problem = shardSetProblem(sets.map((s) => ({ path: s.path, shard: s.shard ?? null, model: s.baseModel, rows: s.rows })));
  if (problem) throw new FeatureFileError(String(input), problem);
  const [first] = sets;
  if (!first) throw new FeatureFileError(String(input), 'names no feature files');
  for (const s of sets.slice(1)) {
    if (s.dimension !== first.dimension) throw new FeatureFileError(s.path, `has ${s.dimension}-dimensional features but ${first.path} has ${first.dimension}`);
    if (JSON.stringify(s.classNames) !== JSON.stringify(first.classNames))
      throw new FeatureFileError(s.path, `has classes ${JSON.stringify(s.classNames)} but ${first.path} has ${JSON.stringify(first.classNames)}`);
  }
  const baseModel = commonBaseModel(sets);
  if (sets.length === 1) return first;
  const rows = sets.reduce((n, s) => n + s.rows, 0);
  const features = new Float32Array(rows * first.dimension);
  const labels = new Int32Array(rows);
  let r = 0;
  for (const s of sets) {
    features.set(s.features, r * first.dimension);
    labels.set(s.labels, r);
    r += s.rows;
  }
  return {
    path: Array.isArray(input) ? files.join(', ') : input,
    rows,
    dimension: first.dimension,
    features,
    labels,
    paths: sets.flatMap((s) => s.paths),
    classNames: first.classNames,
    ...(baseModel ? { baseModel } : {}),
  };
}
