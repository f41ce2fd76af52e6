/**
 * Keras's `flow_from_dataframe`: a table of file paths and labels, read from CSV or an Arrow IPC
 * file (the "dataframe"), turned into a Manifest. Class modes follow Keras's DataFrameIterator:
 * categorical / binary / sparse take class names from `yCol`; raw takes numbers from one or more
 * columns as one target vector; multi_output takes one number column per model output.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { parse } from 'csv-parse/sync';
import { DatasetError, invalidOption } from '../errors.js';
import { arrowBytesProblem } from '@featherstack/common';
import { codePointCompare, type Manifest } from './directory.js';

export type ManifestClassMode = 'categorical' | 'binary' | 'sparse' | 'raw' | 'multi_output' | 'input' | 'none';

export interface ManifestOptions {
  /** Column holding file paths (relative to `directory`, or absolute). Default 'filename'. */
  xCol?: string;
  /** Label column, or several for raw / multi_output. Default 'class'. */
  yCol?: string | string[];
  /** Base directory of relative paths. Default: the manifest file's directory. */
  directory?: string;
  classMode?: ManifestClassMode;
  /** Class names in label order; rows of other classes are left out (Keras's behaviour, reported in `excludedRows`). */
  classes?: string[];
  validationSplit?: number;
  subset?: 'training' | 'validation';
}

/** A manifest's samples plus numeric targets for raw / multi_output. */
export interface TableManifest extends Manifest {
  /** One Float32Array per output, `outputWidths[k]` values per sample. */
  targets: Float32Array[];
  outputWidths: number[];
  /** Rows left out because their class is not in `classes` (1-based row numbers of the file). */
  excludedRows: number[];
}

type Row = Record<string, unknown>;

async function readRows(file: string): Promise<{ rows: Row[]; columns: string[] }> {
  const ext = extname(file).toLowerCase();
  if (!['.csv', '.tsv', '.arrow', '.feather', '.ipc', '.arrows'].includes(ext)) {
    throw new DatasetError(`manifest ${file}: unsupported extension '${ext}' (use .csv, .tsv, .arrow, .feather or .ipc)`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new DatasetError(`cannot read manifest ${file}: ${(error as Error).message}`);
  }
  if (ext === '.csv' || ext === '.tsv') {
    try {
      const rows = parse(bytes, { columns: true, skip_empty_lines: true, delimiter: ext === '.tsv' ? '\t' : ',', bom: true, trim: false }) as Row[];
      const header = parse(bytes, { to_line: 1, bom: true, delimiter: ext === '.tsv' ? '\t' : ',' }) as string[][];
      return { rows, columns: header[0] ?? [] };
    } catch (error) {
      throw new DatasetError(`manifest ${file} is not valid CSV: ${(error as Error).message}`);
    }
  }
  // The IPC file format (starts with ARROW1) must end with its footer; the stream format has none.
  const framing = Buffer.from(bytes.subarray(0, 6)).toString('latin1') === 'ARROW1' ? arrowBytesProblem(bytes) : null;
  if (framing) throw new DatasetError(`manifest ${file} ${framing}`);
  try {
    const table = tableFromIPC(bytes);
    return { rows: table.toArray().map((r) => r.toJSON() as Row), columns: table.schema.fields.map((f) => f.name) };
  } catch (error) {
    throw new DatasetError(`manifest ${file} is not a readable Arrow IPC file: ${(error as Error).message}`);
  }
}

function numberAt(file: string, row: number, column: string, value: unknown): number {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'bigint'
        ? Number(value)
        : typeof value === 'string' && value.trim() !== ''
          ? Number(value)
          : Number.NaN;
  if (!Number.isFinite(n))
    throw new DatasetError(`manifest ${file}, row ${row}, column '${column}': expected a number, found ${JSON.stringify(String(value))}`);
  return n;
}

/**
 * Reads a CSV or Arrow manifest.
 *
 * @example
 * const m = await readManifest('labels.csv', { xCol: 'file', yCol: ['x', 'y'], classMode: 'raw' });
 */
export async function readManifest(file: string, options: ManifestOptions = {}): Promise<TableManifest> {
  if (typeof file !== 'string' || file.length === 0) throw invalidOption('manifest', 'a path to a .csv or .arrow file', file);
  const xCol = options.xCol ?? 'filename';
  const yCols = options.yCol === undefined ? ['class'] : Array.isArray(options.yCol) ? options.yCol : [options.yCol];
  const classMode = options.classMode ?? 'categorical';
  if (!['categorical', 'binary', 'sparse', 'raw', 'multi_output', 'input', 'none'].includes(classMode)) {
    throw invalidOption('classMode', "'categorical', 'binary', 'sparse', 'raw', 'multi_output', 'input' or 'none'", classMode);
  }
  const labelled = classMode !== 'input' && classMode !== 'none';
  const numeric = classMode === 'raw' || classMode === 'multi_output';
  if (labelled && !numeric && yCols.length !== 1) throw invalidOption('yCol', `one column name for classMode '${classMode}'`, options.yCol);
  const { rows, columns } = await readRows(file);
  for (const col of [xCol, ...(labelled ? yCols : [])]) {
    if (!columns.includes(col)) throw new DatasetError(`manifest ${file} has no column '${col}' (columns: ${columns.join(', ')})`);
  }
  const root = resolve(options.directory ?? dirname(file));
  // Keras slices the dataframe as a whole: validation = the first split fraction, training = the rest.
  let start = 0;
  let stop = rows.length;
  if (options.validationSplit !== undefined) {
    const v = options.validationSplit;
    if (typeof v !== 'number' || !(v > 0 && v < 1)) throw invalidOption('validationSplit', 'a number in (0, 1)', v);
    if (options.subset !== 'training' && options.subset !== 'validation')
      throw invalidOption('subset', "'training' or 'validation' with validationSplit", options.subset);
    const cut = Math.floor(v * rows.length);
    [start, stop] = options.subset === 'validation' ? [0, cut] : [cut, rows.length];
  }
  const picked = rows.slice(start, stop).map((row, i) => ({ row, line: start + i + 2 }));
  let classNames: string[] = [];
  if (labelled && !numeric) {
    const found = [...new Set(picked.map(({ row }) => String(row[yCols[0]!])))].sort(codePointCompare);
    classNames = options.classes ?? found;
  }
  const classIndices = Object.fromEntries(classNames.map((c, i) => [c, i]));
  const excludedRows: number[] = [];
  const kept = picked.filter(({ row, line }) => {
    if (!labelled || numeric) return true;
    if (String(row[yCols[0]!]) in classIndices) return true;
    excludedRows.push(line);
    return false;
  });
  if (kept.length === 0)
    throw new DatasetError(
      `manifest ${file} selects no rows${excludedRows.length ? ` (${excludedRows.length} rows have classes outside options.classes)` : ''}`,
    );
  if (classMode === 'binary' && classNames.length !== 2)
    throw invalidOption('classMode', `'binary' only with exactly 2 classes (found ${classNames.length})`, classMode);
  const paths: string[] = [];
  const labels = new Int32Array(kept.length).fill(-1);
  const outputWidths = classMode === 'raw' ? [yCols.length] : classMode === 'multi_output' ? yCols.map(() => 1) : [];
  const targets = outputWidths.map((w) => new Float32Array(kept.length * w));
  for (const [i, { row, line }] of kept.entries()) {
    const value = row[xCol];
    if (typeof value !== 'string' || value.length === 0)
      throw new DatasetError(`manifest ${file}, row ${line}, column '${xCol}': expected a file path, found ${JSON.stringify(value)}`);
    paths.push(isAbsolute(value) ? relative(root, value) : value);
    if (labelled && !numeric) labels[i] = classIndices[String(row[yCols[0]!])]!;
    if (classMode === 'raw') for (const [k, col] of yCols.entries()) targets[0]![i * yCols.length + k] = numberAt(file, line, col, row[col]);
    if (classMode === 'multi_output') for (const [k, col] of yCols.entries()) targets[k]![i] = numberAt(file, line, col, row[col]);
  }
  return { root, classNames, classIndices, paths, labels, targets, outputWidths, excludedRows };
}
