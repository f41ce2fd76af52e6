/**
 * The pack format, owned here (schema, file names, version): a directory holding
 * - `pack.json`: the class table, counts, how the images were encoded, and each shard's file, row
 *   count, size and SHA-256 — written last, so a pack whose writer died has none and is refused;
 * - `index.arrow`: one row per image (listing index, relative path, label, shard, row), so a flow
 *   opens without reading a shard;
 * - `shard-NNNNN.arrow`: Arrow IPC files of about `shardBytes` each, one record batch of
 *   (index, path, label, crc, bytes): every image's encoded bytes, its CRC-32, label and path.
 * Rows are stored in a seeded random order (as WebDataset shards are), so that reading shards in a
 * shuffled order through a small shuffle buffer mixes classes; `index` keeps each image's place in
 * the directory listing, which validationSplit needs.
 * @internal
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { arrowBytesProblem } from '@featherstack/common';
import { Binary, Field, Int32, Schema, tableFromIPC, Uint32, Utf8 } from 'apache-arrow';
import { DatasetError } from '../errors.js';

export const PACK_FORMAT = 'featherstack-pack';
export const PACK_VERSION = 1;
export const PACK_MANIFEST = 'pack.json';
export const PACK_INDEX = 'index.arrow';

export function shardFileName(k: number): string {
  return `shard-${String(k).padStart(5, '0')}.arrow`;
}

/** How the images' bytes were stored: the original files', or re-encoded as JPEG. */
export type PackEncoding = { kind: 'original' } | { kind: 'jpeg'; maxSide: number | null; quality: number };

export interface PackShardInfo {
  file: string;
  samples: number;
  bytes: number;
  sha256: string;
}

export interface PackManifest {
  format: typeof PACK_FORMAT;
  version: number;
  classNames: string[];
  samples: number;
  /** Bytes of the images' encoded data (without the Arrow framing). */
  imageBytes: number;
  encoding: PackEncoding;
  /** The seed of the stored row order. */
  seed: number;
  /** The directory the images came from (informational). */
  source: string;
  shards: PackShardInfo[];
}

/** The columns of every shard. */
export const shardSchema = new Schema([
  new Field('index', new Uint32(), false),
  new Field('path', new Utf8(), false),
  new Field('label', new Int32(), false),
  new Field('crc', new Uint32(), false),
  new Field('bytes', new Binary(), false),
]);

/** The columns of index.arrow. */
export const indexSchema = new Schema([
  new Field('index', new Uint32(), false),
  new Field('path', new Utf8(), false),
  new Field('label', new Int32(), false),
  new Field('shard', new Uint32(), false),
  new Field('row', new Uint32(), false),
]);

/** A pack's table of contents: the manifest and, per stored row (pack order), its place and label. */
export interface PackIndex {
  dir: string;
  manifest: PackManifest;
  listing: Uint32Array;
  paths: string[];
  labels: Int32Array;
  shard: Uint32Array;
  row: Uint32Array;
}

/**
 * Whether `dir` holds a pack, or what is left of one whose packing died (its first shard or its
 * index without pack.json): reading that as a directory of class folders would mislead.
 */
export async function isPack(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return [PACK_MANIFEST, PACK_INDEX, shardFileName(0), `${shardFileName(0)}.partial`].some((name) => names.includes(name));
}

function problem(dir: string, what: string): DatasetError {
  return new DatasetError(`pack ${dir}: ${what}`);
}

/** Reads and checks a pack's manifest and index. Rejects naming the pack and what is wrong. */
export async function readPackIndex(dir: string): Promise<PackIndex> {
  let text: string;
  try {
    text = await readFile(join(dir, PACK_MANIFEST), 'utf8');
  } catch {
    throw problem(dir, `has no ${PACK_MANIFEST} (not a pack, or its packing did not finish)`);
  }
  let manifest: PackManifest;
  try {
    manifest = JSON.parse(text) as PackManifest;
  } catch (error) {
    throw problem(dir, `${PACK_MANIFEST} is not JSON: ${(error as Error).message}`);
  }
  if (manifest?.format !== PACK_FORMAT) throw problem(dir, `${PACK_MANIFEST} is not a ${PACK_FORMAT} manifest`);
  if (manifest.version !== PACK_VERSION) throw problem(dir, `format version ${manifest.version}; this featherstack reads version ${PACK_VERSION}`);
  if (!Array.isArray(manifest.shards) || !Array.isArray(manifest.classNames) || !Number.isInteger(manifest.samples))
    throw problem(dir, `${PACK_MANIFEST} lacks shards, classNames or samples`);
  const file = join(dir, PACK_INDEX);
  const bytes = await readFile(file).catch(() => {
    throw problem(dir, `has no ${PACK_INDEX}`);
  });
  const framing = arrowBytesProblem(bytes);
  if (framing) throw problem(dir, `${PACK_INDEX} ${framing}`);
  const table = tableFromIPC(bytes);
  const column = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw problem(dir, `${PACK_INDEX} has no '${name}' column`);
    return c;
  };
  const n = table.numRows;
  if (n !== manifest.samples) throw problem(dir, `${PACK_INDEX} has ${n} rows, ${PACK_MANIFEST} says ${manifest.samples}`);
  const index: PackIndex = {
    dir,
    manifest,
    listing: Uint32Array.from(column('index').toArray() as Uint32Array),
    paths: column('path').toArray() as string[],
    labels: Int32Array.from(column('label').toArray() as Int32Array),
    shard: Uint32Array.from(column('shard').toArray() as Uint32Array),
    row: Uint32Array.from(column('row').toArray() as Uint32Array),
  };
  const counts = new Array<number>(manifest.shards.length).fill(0);
  for (let i = 0; i < n; i++) {
    const s = index.shard[i]!;
    if (s >= counts.length || index.row[i] !== counts[s]) throw problem(dir, `${PACK_INDEX} row ${i} points at shard ${s} row ${index.row[i]}, out of order`);
    counts[s]!++;
    if (index.labels[i]! >= manifest.classNames.length)
      throw problem(dir, `${PACK_INDEX} row ${i} has label ${index.labels[i]}, outside its ${manifest.classNames.length} classes`);
  }
  for (const [s, info] of manifest.shards.entries()) {
    if (counts[s] !== info.samples) throw problem(dir, `${info.file} should hold ${info.samples} images, ${PACK_INDEX} lists ${counts[s]}`);
  }
  return index;
}

/** One shard's rows, as views of its file's bytes. */
export interface ShardRows {
  offsets: Int32Array;
  values: Uint8Array;
  /** Each row's CRC-32 (null for tar shards, which carry none). */
  crcs: Uint32Array | null;
}

/** Parses a shard file's bytes, checking its framing, columns and row count. */
export function parseShard(file: string, bytes: Uint8Array, samples: number): ShardRows {
  const framing = arrowBytesProblem(bytes);
  if (framing) throw new DatasetError(`pack shard ${file} ${framing}`);
  let table: ReturnType<typeof tableFromIPC>;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new DatasetError(`pack shard ${file} is not a readable Arrow IPC file: ${(error as Error).message}`);
  }
  if (table.numRows !== samples || table.batches.length !== 1)
    throw new DatasetError(`pack shard ${file} holds ${table.numRows} rows in ${table.batches.length} batches; its pack says ${samples} rows in 1`);
  const data = table.getChild('bytes')?.data[0];
  const crc = table.getChild('crc')?.data[0];
  if (!data?.valueOffsets || !crc) throw new DatasetError(`pack shard ${file} has no 'bytes' or 'crc' column`);
  return { offsets: data.valueOffsets as Int32Array, values: data.values as Uint8Array, crcs: crc.values as Uint32Array };
}

/** Byte strings laid end to end: `values`, with string i at [offsets[i], offsets[i + 1]) (Arrow's Binary layout). */
export function concatBytes(parts: readonly Uint8Array[]): { values: Uint8Array; offsets: Int32Array } {
  const offsets = new Int32Array(parts.length + 1);
  for (const [i, p] of parts.entries()) offsets[i + 1] = offsets[i]! + p.length;
  const values = new Uint8Array(offsets[parts.length]!);
  for (const [i, p] of parts.entries()) values.set(p, offsets[i]!);
  return { values, offsets };
}
