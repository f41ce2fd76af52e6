/**
 * packDataset: a directory of class folders (or a listing) written as a pack (see format.ts).
 * Images are read with a bounded number of reads in flight and appended to the open shard; a shard
 * is written (to a .partial file, then renamed) once it reaches `shardBytes`, so memory holds one
 * shard at a time. pack.json is written last.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { arrowBytesProblem, DEFAULT_SEED, epochOrder } from '@featherstack/common';
import { makeData, RecordBatch, Struct, Table, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import sharp from 'sharp';
import { DatasetError, invalidOption } from '../errors.js';
import { type DirectoryListingOptions, listDirectory, type Manifest } from '../sources/directory.js';
import {
  concatBytes,
  indexSchema,
  PACK_FORMAT,
  PACK_INDEX,
  PACK_MANIFEST,
  PACK_VERSION,
  type PackEncoding,
  parseShard,
  type PackManifest,
  type PackShardInfo,
  shardFileName,
  shardSchema,
} from './format.js';

export interface PackOptions extends Pick<DirectoryListingOptions, 'classes' | 'extensions' | 'followLinks'> {
  /** Target bytes of encoded images per shard. Default 256 MiB; at most 1 GiB. */
  shardBytes?: number;
  /** Re-encode as JPEG with the longer side at most this many pixels (never enlarged). Default: keep the original bytes. */
  maxSide?: number;
  /** JPEG quality when re-encoding (1–100). Default 90. Setting it alone re-encodes at full size. */
  quality?: number;
  /** Seed of the stored row order. Default 0. */
  seed?: number;
  /** Reads (and re-encodes) in flight. Default 16. */
  concurrency?: number;
  /** Called after each shard is written. */
  onShard?: (info: PackShardInfo & { done: number; total: number }) => void;
  /** Replace an existing pack at `out`. Default false. */
  overwrite?: boolean;
}

export interface PackResult {
  dir: string;
  manifest: PackManifest;
}

interface Row {
  index: number;
  path: string;
  label: number;
  bytes: Uint8Array;
}

/**
 * A pack's layout as `options` ask for it, each option checked by name: source bytes per shard
 * (default 256 MiB), the seed of the stored order (default DEFAULT_SEED, 42) and the encoding.
 */
export function packLayout(options: Pick<PackOptions, 'shardBytes' | 'seed' | 'maxSide' | 'quality'>): {
  shardBytes: number;
  seed: number;
  encoding: PackEncoding;
} {
  const shardBytes = options.shardBytes ?? 256 * 2 ** 20;
  if (!(Number.isInteger(shardBytes) && shardBytes >= 1 && shardBytes <= 2 ** 30)) throw invalidOption('shardBytes', 'an integer from 1 to 1 GiB', shardBytes);
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw invalidOption('seed', 'an integer', seed);
  return { shardBytes, seed, encoding: packEncoding(options) };
}

/** The encoding `options` ask for (maxSide, quality), checked by option name. */
function packEncoding(options: Pick<PackOptions, 'maxSide' | 'quality'>): PackEncoding {
  const { maxSide, quality } = options;
  if (maxSide !== undefined && !(Number.isInteger(maxSide) && maxSide >= 1)) throw invalidOption('maxSide', 'a positive integer number of pixels', maxSide);
  if (quality !== undefined && !(Number.isInteger(quality) && quality >= 1 && quality <= 100))
    throw invalidOption('quality', 'an integer from 1 to 100', quality);
  if (maxSide === undefined && quality === undefined) return { kind: 'original' };
  return { kind: 'jpeg', maxSide: maxSide ?? null, quality: quality ?? 90 };
}

async function encode(path: string, bytes: Buffer, encoding: PackEncoding): Promise<Uint8Array> {
  if (encoding.kind === 'original') return bytes;
  try {
    // Metadata kept: the orientation tag still says how to turn the stored pixels, as in the original.
    let image = sharp(bytes, { failOn: 'error' }).keepMetadata();
    if (encoding.maxSide !== null) image = image.resize(encoding.maxSide, encoding.maxSide, { fit: 'inside', withoutEnlargement: true });
    return await image.jpeg({ quality: encoding.quality, mozjpeg: false }).toBuffer();
  } catch (error) {
    throw new DatasetError(`pack: cannot re-encode ${path}: ${(error as Error).message}`);
  }
}

function shardTable(rows: Row[]): Table {
  const { values, offsets } = concatBytes(rows.map((r) => r.bytes));
  const [index, path, label, crc, bytes] = shardSchema.fields;
  const children = [
    makeData({ type: index!.type, data: Uint32Array.from(rows, (r) => r.index) }),
    vectorFromArray(
      rows.map((r) => r.path),
      path!.type,
    ).data[0]!,
    makeData({ type: label!.type, data: Int32Array.from(rows, (r) => r.label) }),
    makeData({ type: crc!.type, data: Uint32Array.from(rows, (r) => crc32(r.bytes)) }),
    makeData({ type: bytes!.type, valueOffsets: offsets, data: values }),
  ];
  const struct = makeData({ type: new Struct(shardSchema.fields), length: rows.length, nullCount: 0, children });
  return new Table([new RecordBatch(shardSchema, struct)]);
}

/**
 * Makes `out` ready for a pack: created, or emptied when it holds an earlier pack and `overwrite`
 * says so; any other content is refused by name. Returns its absolute path.
 */
export async function preparePackDir(out: string, overwrite: boolean): Promise<string> {
  const dir = resolve(out);
  const existing = await readdir(dir).catch(() => null);
  if (existing && existing.length > 0) {
    if (!overwrite) throw new DatasetError(`pack: ${dir} is not empty (pass overwrite to replace it)`);
    if (!existing.includes(PACK_MANIFEST)) throw new DatasetError(`pack: ${dir} is not empty and holds no pack; refusing to overwrite it`);
    await rm(dir, { recursive: true });
  }
  await mkdir(dir, { recursive: true });
  return dir;
}

/** One image of a pack as it is stored: its listing index, relative path and label. */
export interface PackRow {
  index: number;
  path: string;
  label: number;
}

/** `rows` of the listing rooted at `root`, read (and re-encoded) with `concurrency` in flight, in order. */
async function readRows(
  root: string,
  rows: readonly PackRow[],
  encoding: PackEncoding,
  concurrency: number,
  onRow: (row: Row) => Promise<void>,
): Promise<void> {
  const read = (r: PackRow): Promise<Row> => {
    const path = join(root, r.path);
    return readFile(path)
      .catch((error: Error) => {
        throw new DatasetError(`pack: cannot read ${path}: ${error.message}`);
      })
      .then((bytes) => encode(path, bytes, encoding))
      .then((bytes) => ({ ...r, bytes }));
  };
  const inFlight: Promise<Row>[] = [];
  let next = 0;
  try {
    while (next < rows.length && inFlight.length < concurrency) inFlight.push(read(rows[next++]!));
    while (inFlight.length > 0) {
      const row = await inFlight.shift()!;
      if (next < rows.length) inFlight.push(read(rows[next++]!));
      await onRow(row);
    }
  } catch (error) {
    await Promise.allSettled(inFlight);
    throw error;
  }
}

/** `rows` written as one shard file at `file` (through `file`.partial); its size and SHA-256. */
async function writeShard(file: string, rows: Row[]): Promise<{ bytes: number; sha256: string }> {
  const bytes = tableToIPC(shardTable(rows), 'file');
  await writeFile(`${file}.partial`, bytes);
  await rename(`${file}.partial`, file);
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * One shard of a pack made elsewhere (a job queue's worker): `rows` of the listing rooted at
 * `root`, in this order, read, encoded and written to `file`. `finishPack` then joins the shards.
 */
export async function packShard(
  root: string,
  rows: readonly PackRow[],
  encoding: PackEncoding,
  file: string,
  concurrency = 16,
): Promise<{ samples: number; bytes: number; sha256: string; imageBytes: number }> {
  const read: Row[] = [];
  let imageBytes = 0;
  await readRows(root, rows, encoding, concurrency, async (row) => {
    read.push(row);
    imageBytes += row.bytes.length;
  });
  return { samples: read.length, ...(await writeShard(file, read)), imageBytes };
}

/**
 * The index and then the manifest of a pack whose shards are in `dir` (pack.json last: until it is
 * written the pack is refused as unfinished). `shards[k]` is shard k's file and the rows it holds.
 */
export async function finishPack(
  dir: string,
  listing: Pick<Manifest, 'root' | 'classNames'>,
  encoding: PackEncoding,
  seed: number,
  shards: readonly { info: PackShardInfo; rows: readonly PackRow[] }[],
  imageBytes: number,
): Promise<PackManifest> {
  const all = shards.flatMap((s, k) => s.rows.map((r, row) => ({ ...r, shard: k, row })));
  const [listingField, path, label, shard, row] = indexSchema.fields;
  const children = [
    makeData({ type: listingField!.type, data: Uint32Array.from(all, (r) => r.index) }),
    vectorFromArray(
      all.map((r) => r.path),
      path!.type,
    ).data[0]!,
    makeData({ type: label!.type, data: Int32Array.from(all, (r) => r.label) }),
    makeData({ type: shard!.type, data: Uint32Array.from(all, (r) => r.shard) }),
    makeData({ type: row!.type, data: Uint32Array.from(all, (r) => r.row) }),
  ];
  const struct = makeData({ type: new Struct(indexSchema.fields), length: all.length, nullCount: 0, children });
  await writeFile(join(dir, PACK_INDEX), tableToIPC(new Table([new RecordBatch(indexSchema, struct)]), 'file'));
  const manifest: PackManifest = {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    classNames: listing.classNames,
    samples: all.length,
    imageBytes,
    encoding,
    seed,
    source: listing.root,
    shards: shards.map((s) => s.info),
  };
  await writeFile(join(dir, `${PACK_MANIFEST}.partial`), `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(join(dir, `${PACK_MANIFEST}.partial`), join(dir, PACK_MANIFEST));
  return manifest;
}

/**
 * Writes the dataset at `source` (a directory of class folders, or a listing) as a pack in `out`.
 *
 * @example
 * const { manifest } = await packDataset('data/train', 'packs/train', { shardBytes: 64 * 2 ** 20 });
 * console.log(manifest.shards.length, 'shards');
 */
export async function packDataset(source: string | Manifest, out: string, options: PackOptions = {}): Promise<PackResult> {
  if (typeof out !== 'string' || out.length === 0) throw invalidOption('out', 'a directory path', out);
  const { shardBytes, seed, encoding } = packLayout(options);
  const concurrency = options.concurrency ?? 16;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw invalidOption('concurrency', 'a positive integer', concurrency);
  const listing =
    typeof source === 'string'
      ? await listDirectory(source, {
          ...(options.classes ? { classes: options.classes } : {}),
          ...(options.extensions ? { extensions: options.extensions } : {}),
          ...(options.followLinks !== undefined ? { followLinks: options.followLinks } : {}),
        })
      : source;
  if (listing.paths.length === 0) throw new DatasetError(`pack: ${listing.root} holds no images`);
  if (listing.paths.length >= 2 ** 32) throw new DatasetError(`pack: ${listing.paths.length} images is more than a pack indexes`);
  const dir = await preparePackDir(out, options.overwrite ?? false);

  const order = epochOrder(listing.paths.length, seed, 0, true);
  const shards: { info: PackShardInfo; rows: PackRow[] }[] = [];
  let rows: Row[] = [];
  let rowBytes = 0;
  let imageBytes = 0;
  let done = 0;
  const flush = async () => {
    const file = shardFileName(shards.length);
    const info = { file, samples: rows.length, ...(await writeShard(join(dir, file), rows)) };
    shards.push({ info, rows: rows.map(({ index, path, label }) => ({ index, path, label })) });
    done += rows.length;
    options.onShard?.({ ...info, done, total: listing.paths.length });
    rows = [];
    rowBytes = 0;
  };
  // Rows in the stored order; a shard is written once the next row would take it past shardBytes.
  const planned = Array.from(order, (i) => ({ index: i, path: listing.paths[i]!, label: listing.labels[i]! }));
  await readRows(listing.root, planned, encoding, concurrency, async (row) => {
    if (rows.length > 0 && rowBytes + row.bytes.length > shardBytes) await flush();
    rows.push(row);
    rowBytes += row.bytes.length;
    imageBytes += row.bytes.length;
  });
  if (rows.length > 0) await flush();
  const manifest = await finishPack(dir, listing, encoding, seed, shards, imageBytes);
  return { dir, manifest };
}

/**
 * A shard file read back and checked: its size and SHA-256, and the rows it holds (listing index,
 * path, label), each image's bytes checked against its CRC-32. For a coordinator joining shards
 * that other machines wrote; rejects naming the file and what is wrong.
 */
export async function inspectPackShard(file: string): Promise<{ bytes: number; sha256: string; rows: PackRow[]; imageBytes: number }> {
  const bytes = await readFile(file).catch((error: Error) => {
    throw new DatasetError(`pack shard ${file} cannot be read: ${error.message}`);
  });
  const framing = arrowBytesProblem(bytes);
  if (framing) throw new DatasetError(`pack shard ${file} ${framing}`);
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new DatasetError(`pack shard ${file} is not a readable Arrow IPC file: ${(error as Error).message}`);
  }
  const { offsets, values, crcs } = parseShard(file, bytes, table.numRows);
  const index = table.getChild('index')?.toArray() as Uint32Array | undefined;
  const paths = table.getChild('path')?.toArray() as string[] | undefined;
  const labels = table.getChild('label')?.toArray() as Int32Array | undefined;
  if (!index || !paths || !labels) throw new DatasetError(`pack shard ${file} lacks its index, path or label column`);
  const rows: PackRow[] = [];
  for (let r = 0; r < table.numRows; r++) {
    if (crc32(values.subarray(offsets[r]!, offsets[r + 1]!)) !== crcs![r])
      throw new DatasetError(`pack shard ${file}: the bytes of ${paths[r]} (row ${r}) fail their CRC-32`);
    rows.push({ index: index[r]!, path: paths[r]!, label: labels[r]! });
  }
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), rows, imageBytes: offsets[table.numRows]! - offsets[0]! };
}
