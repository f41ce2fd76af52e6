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
import { epochOrder } from '@featherstack/common';
import { makeData, RecordBatch, Struct, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
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

function encodingOf(options: PackOptions): PackEncoding {
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
 * Writes the dataset at `source` (a directory of class folders, or a listing) as a pack in `out`.
 *
 * @example
 * const { manifest } = await packDataset('data/train', 'packs/train', { shardBytes: 64 * 2 ** 20 });
 * console.log(manifest.shards.length, 'shards');
 */
export async function packDataset(source: string | Manifest, out: string, options: PackOptions = {}): Promise<PackResult> {
  if (typeof out !== 'string' || out.length === 0) throw invalidOption('out', 'a directory path', out);
  const shardBytes = options.shardBytes ?? 256 * 2 ** 20;
  if (!(Number.isInteger(shardBytes) && shardBytes >= 1 && shardBytes <= 2 ** 30)) throw invalidOption('shardBytes', 'an integer from 1 to 1 GiB', shardBytes);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw invalidOption('seed', 'an integer', seed);
  const concurrency = options.concurrency ?? 16;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw invalidOption('concurrency', 'a positive integer', concurrency);
  const encoding = encodingOf(options);
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
  const dir = resolve(out);
  const existing = await readdir(dir).catch(() => null);
  if (existing && existing.length > 0) {
    if (!options.overwrite) throw new DatasetError(`pack: ${dir} is not empty (pass overwrite to replace it)`);
    if (!existing.includes(PACK_MANIFEST)) throw new DatasetError(`pack: ${dir} is not empty and holds no pack; refusing to overwrite it`);
    await rm(dir, { recursive: true });
  }
  await mkdir(dir, { recursive: true });

  const order = epochOrder(listing.paths.length, seed, 0, true);
  const shards: PackShardInfo[] = [];
  const index = { listing: [] as number[], paths: [] as string[], labels: [] as number[], shard: [] as number[], row: [] as number[] };
  let rows: Row[] = [];
  let rowBytes = 0;
  let imageBytes = 0;
  const flush = async () => {
    const file = shardFileName(shards.length);
    const bytes = tableToIPC(shardTable(rows), 'file');
    await writeFile(join(dir, `${file}.partial`), bytes);
    await rename(join(dir, `${file}.partial`), join(dir, file));
    const info = { file, samples: rows.length, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    for (const [r, row] of rows.entries()) {
      index.listing.push(row.index);
      index.paths.push(row.path);
      index.labels.push(row.label);
      index.shard.push(shards.length);
      index.row.push(r);
    }
    shards.push(info);
    options.onShard?.({ ...info, done: index.paths.length, total: listing.paths.length });
    rows = [];
    rowBytes = 0;
  };
  // Reads run `concurrency` ahead of the row being appended; rows are appended in `order`.
  const read = (k: number): Promise<Row> => {
    const i = order[k]!;
    const path = join(listing.root, listing.paths[i]!);
    return readFile(path)
      .catch((error: Error) => {
        throw new DatasetError(`pack: cannot read ${path}: ${error.message}`);
      })
      .then((bytes) => encode(path, bytes, encoding))
      .then((bytes) => ({ index: i, path: listing.paths[i]!, label: listing.labels[i]!, bytes }));
  };
  const inFlight: Promise<Row>[] = [];
  let next = 0;
  try {
    while (next < order.length && inFlight.length < concurrency) inFlight.push(read(next++));
    while (inFlight.length > 0) {
      const row = await inFlight.shift()!;
      if (next < order.length) inFlight.push(read(next++));
      if (rows.length > 0 && rowBytes + row.bytes.length > shardBytes) await flush();
      rows.push(row);
      rowBytes += row.bytes.length;
      imageBytes += row.bytes.length;
    }
    if (rows.length > 0) await flush();
  } catch (error) {
    await Promise.allSettled(inFlight);
    throw error;
  }
  const [listingField, path, label, shard, row] = indexSchema.fields;
  const children = [
    makeData({ type: listingField!.type, data: Uint32Array.from(index.listing) }),
    vectorFromArray(index.paths, path!.type).data[0]!,
    makeData({ type: label!.type, data: Int32Array.from(index.labels) }),
    makeData({ type: shard!.type, data: Uint32Array.from(index.shard) }),
    makeData({ type: row!.type, data: Uint32Array.from(index.row) }),
  ];
  const struct = makeData({ type: new Struct(indexSchema.fields), length: index.paths.length, nullCount: 0, children });
  await writeFile(join(dir, PACK_INDEX), tableToIPC(new Table([new RecordBatch(indexSchema, struct)]), 'file'));
  const manifest: PackManifest = {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    classNames: listing.classNames,
    samples: listing.paths.length,
    imageBytes,
    encoding,
    seed,
    source: listing.root,
    shards,
  };
  await writeFile(join(dir, `${PACK_MANIFEST}.partial`), `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(join(dir, `${PACK_MANIFEST}.partial`), join(dir, PACK_MANIFEST));
  return { dir, manifest };
}
