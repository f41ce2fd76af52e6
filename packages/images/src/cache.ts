/**
 * The pixel cache: decoded, resized, un-augmented uint8 pixels of every sample in one Arrow IPC
 * file (columns `sample` uint32, `pixels`, `error` utf8, `crc32` uint32 of each row's stored
 * bytes), written while the first epoch runs. `pixels` is FixedSizeList<uint8>[h·w·c] for the raw
 * encoding, or Binary holding each image at the flow's size as PNG (lossless: the same pixels) or
 * JPEG (lossy, a fraction of the bytes) for the encoded ones, which the decode workers encode and
 * decode. Every row read is checked against its CRC-32, so pixels overwritten in place are
 * refused by path instead of trained on. Later epochs read single rows at their byte offsets
 * (pread), never the whole file, and only augment (and, encoded, decode at the flow's size).
 *
 * The file is ordinary Arrow IPC (pyarrow, polars and `featherstack inspect` read it). The index of
 * row offsets is built from the message headers alone: each record batch's metadata gives its
 * buffers' positions, so opening a cache reads a few hundred bytes per batch.
 * @internal
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  Binary,
  Field,
  FixedSizeList,
  makeData,
  Message,
  RecordBatch,
  RecordBatchReader,
  Schema,
  Struct,
  Uint8,
  Uint32,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { ArrowFileWriter, arrowFileProblem, isShardFileName, PIXEL_CACHE_METADATA } from '@featherstack/common';
import { DatasetError, ImageOptionError, invalidOption } from './errors.js';
import type { ImageSpec } from './image-spec.js';
import { concatBytes } from './pack/format.js';

const KEY = PIXEL_CACHE_METADATA;

/** How a pixel cache stores each image: uint8 pixels as they are, or encoded at the flow's size. */
export type CacheEncoding = { kind: 'raw' } | { kind: 'png' } | { kind: 'jpeg'; quality: number };

/** The text that names a cache encoding (`raw`, `png`, `jpeg:90`), as options and the CLI spell it. */
export type CacheFormat = 'raw' | 'png' | 'jpeg' | `jpeg:${number}`;

export const RAW_CACHE: CacheEncoding = { kind: 'raw' };

/**
 * Reads a cache format: `raw`, `png`, or `jpeg[:Q]` (Q from 1 to 100, default 90). Throws an error
 * naming `what` otherwise.
 *
 * @example
 * parseCacheFormat('jpeg:85'); // → { kind: 'jpeg', quality: 85 }
 */
export function parseCacheFormat(text: unknown, what = 'options.cacheFormat'): CacheEncoding {
  if (text === 'raw') return RAW_CACHE;
  if (text === 'png') return { kind: 'png' };
  const m = typeof text === 'string' ? /^jpeg(?::(\d{1,3}))?$/.exec(text) : null;
  const quality = m ? Number(m[1] ?? 90) : Number.NaN;
  if (m && quality >= 1 && quality <= 100) return { kind: 'jpeg', quality };
  throw new ImageOptionError(`${what} must be raw, png or jpeg[:Q] with Q from 1 to 100, received ${JSON.stringify(text)}`);
}

/** Whether `v` is a cache format parseCacheFormat reads. */
export function isCacheFormat(v: unknown): v is CacheFormat {
  try {
    parseCacheFormat(v);
    return true;
  } catch {
    return false;
  }
}

/** The encoding's name: `raw`, `png`, `jpeg:90`. */
export function cacheFormatName(e: CacheEncoding): string {
  return e.kind === 'jpeg' ? `jpeg:${e.quality}` : e.kind;
}

/** Refuses an encoding the images cannot take, naming the option: JPEG holds 1 or 3 channels. */
export function checkCacheEncoding(e: CacheEncoding, channels: number): void {
  if (e.kind === 'jpeg' && channels !== 1 && channels !== 3)
    throw invalidOption('cacheFormat', `png or raw for ${channels}-channel images (JPEG holds no alpha)`, cacheFormatName(e));
}

/** What a cache's pixels depend on; a cache is reused only when every field matches. */
export interface CacheKey {
  format: 4;
  /** How rows are stored (cacheFormatName). */
  encoding: string;
  height: number;
  width: number;
  channels: number;
  colorMode: string;
  interpolation: string;
  keepAspectRatio: boolean;
  fastDecode: boolean;
  samples: number;
  /** sha256 of the sample paths in dataset order. */
  paths: string;
  /** sha256 of every file's size, modification and change times and inode in dataset order: replaced images show here. */
  files: string;
}

export function cacheKey(image: ImageSpec, paths: string[], files: string, encoding: CacheEncoding = RAW_CACHE): CacheKey {
  const hash = createHash('sha256');
  for (const p of paths) hash.update(p).update('\0');
  return {
    format: 4,
    encoding: cacheFormatName(encoding),
    height: image.height,
    width: image.width,
    channels: image.channels,
    colorMode: image.colorMode,
    interpolation: image.interpolation,
    keepAspectRatio: image.keepAspectRatio,
    fastDecode: image.fastDecode,
    samples: paths.length,
    paths: hash.digest('hex'),
    files,
  };
}

/**
 * sha256 over each file's size, modification time, status-change time (to the millisecond) and
 * inode, in order (stat'ed 64 at a time). The change time catches a file rewritten with its size
 * and modification time restored (utimes sets ctime too); the inode, a file replaced by rename. A
 * file that cannot be stat'ed contributes its error code, so a vanished file changes the stamp too.
 */
export async function fileStamp(files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (let i = 0; i < files.length; i += 64) {
    const stats = await Promise.all(
      files.slice(i, i + 64).map((f) =>
        stat(f).then(
          (s) => `${s.size}:${Math.trunc(s.mtimeMs)}:${Math.trunc(s.ctimeMs)}:${s.ino}`,
          (error: NodeJS.ErrnoException) => error.code ?? 'error',
        ),
      ),
    );
    for (const s of stats) hash.update(s).update('\0');
  }
  return hash.digest('hex');
}

export function cacheSchema(sampleSize: number, key: CacheKey): Schema {
  const pixels = key.encoding === 'raw' ? new FixedSizeList(sampleSize, new Field('value', new Uint8(), false)) : new Binary();
  return new Schema(
    [
      new Field('sample', new Uint32(), false),
      new Field('pixels', pixels, false),
      new Field('error', new Utf8(), true),
      new Field('crc32', new Uint32(), false),
    ],
    new Map([[KEY, JSON.stringify(key)]]),
  );
}

const KEY_NAMES: Record<keyof CacheKey, string> = {
  format: 'cache format',
  encoding: 'encoding',
  height: 'height',
  width: 'width',
  channels: 'channels',
  colorMode: 'colour mode',
  interpolation: 'interpolation',
  keepAspectRatio: 'keep aspect ratio',
  fastDecode: 'fast decode',
  samples: 'images',
  paths: 'image list',
  files: 'file stamps',
};

/** What a stored key has that this flow's does not, in a few words: "colour mode 'grayscale' (this flow: 'rgb')". */
function cacheDifference(old: Record<string, unknown> | null, key: CacheKey): string {
  if (!old) return 'something else (it records no featherstack cache key)';
  const differs = (Object.keys(key) as (keyof CacheKey)[]).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(key[k]));
  const hashed = new Set<keyof CacheKey>(['paths', 'files']);
  const parts = differs.map((k) =>
    hashed.has(k) ? `another ${KEY_NAMES[k]}` : `${KEY_NAMES[k]} ${JSON.stringify(old[k]) ?? 'none'} (this flow: ${JSON.stringify(key[k])})`,
  );
  return `other images or settings: ${parts.join(', ') || 'another key'}`;
}

/** Streams cache rows into an ArrowFileWriter; `finish()` puts the file in place. */
export class PixelCacheWriter {
  private readonly file: ArrowFileWriter;
  /** Bytes of pixels (raw) or encoded images written so far. */
  bytes = 0;

  constructor(
    readonly path: string,
    private readonly schema: Schema,
  ) {
    this.file = new ArrowFileWriter(path, schema);
  }

  /**
   * Appends rows: raw pixels as one array of rows (copied, so the caller may reuse its memory at
   * once), or each row's encoded image (empty where the sample failed).
   */
  write(samples: Uint32Array, pixels: Uint8Array | readonly Uint8Array[], errors: (string | null)[]): void {
    const length = samples.length;
    const type = this.schema.fields[1]!.type as FixedSizeList<Uint8> | Binary;
    const crcs = new Uint32Array(length);
    let column: ReturnType<typeof makeData>;
    if (pixels instanceof Uint8Array) {
      const size = (type as FixedSizeList<Uint8>).listSize;
      const child = makeData({ type: new Uint8(), length: pixels.length, nullCount: 0, data: pixels.slice() });
      for (let r = 0; r < length; r++) crcs[r] = crc32(pixels.subarray(r * size, (r + 1) * size));
      column = makeData({ type: type as FixedSizeList<Uint8>, length, nullCount: 0, child });
      this.bytes += length * size;
    } else {
      const { values, offsets } = concatBytes(pixels);
      for (let r = 0; r < length; r++) crcs[r] = crc32(pixels[r]!);
      column = makeData({ type: type as Binary, length, nullCount: 0, valueOffsets: offsets, data: values });
      this.bytes += values.length;
    }
    const children = [
      makeData({ type: new Uint32(), length, nullCount: 0, data: samples.slice() }),
      column,
      vectorFromArray(errors, new Utf8()).data[0]!,
      makeData({ type: new Uint32(), length, nullCount: 0, data: crcs }),
    ];
    this.file.write(new RecordBatch(this.schema, makeData({ type: new Struct(this.schema.fields), length, nullCount: 0, children })));
  }

  finish(): Promise<void> {
    return this.file.finish();
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** Where each sample's pixels are in a finished cache file. */
export interface PixelCacheIndex {
  file: string;
  /** A sharded cache: the file of each sample (pixels-<n>.arrow of a cache directory). */
  files?: string[];
  /** Byte offset of each sample's pixels; -1 where the sample failed to decode. */
  offsets: Float64Array;
  /** An encoded cache: the encoding, and each sample's byte length at its offset. */
  encoded?: { encoding: CacheEncoding; lengths: Uint32Array };
  /** CRC-32 of each sample's pixels, checked on every read. */
  crcs: Uint32Array;
  /** Decode failures recorded when the cache was built, by sample. */
  errors: Map<number, string>;
}

/** A cache file that cannot be read back (truncated, overwritten, not Arrow): derived data, rebuilt. */
class DamagedCacheError extends DatasetError {}

async function readExactly(fh: Awaited<ReturnType<typeof open>>, position: number, length: number, file: string): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new DamagedCacheError(`pixel cache ${file} is truncated at byte ${position + bytesRead}`);
  return buf;
}

/**
 * Opens a finished cache and indexes its rows. Returns null when `file` does not exist, and also
 * when it is damaged (truncated, overwritten, not an Arrow file): caches are written beside and
 * renamed, so a damaged one was damaged afterwards; it is removed, with a process warning (code
 * FEATHERSTACK_CACHE_REBUILT) naming it, and the next full epoch rebuilds it. Throws a DatasetError
 * naming the file when it was built for other images or settings, or from files changed since.
 */
export async function openPixelCache(file: string, key: CacheKey): Promise<PixelCacheIndex | null> {
  try {
    return await readPixelCache(file, key);
  } catch (error) {
    if (!(error instanceof DamagedCacheError)) throw error;
    await rm(file, { force: true });
    process.emitWarning(`${error.message}: removed, to be rebuilt by the next full epoch`, { code: 'FEATHERSTACK_CACHE_REBUILT' });
    return null;
  }
}

async function readPixelCache(file: string, key: CacheKey): Promise<PixelCacheIndex | null> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DatasetError(`cannot open pixel cache ${file}: ${(error as Error).message}`);
  }
  try {
    const { size } = await fh.stat();
    const framing = await arrowFileProblem(fh);
    if (framing) throw new DamagedCacheError(`pixel cache ${file} ${framing}`);
    // apache-arrow writes the schema in the footer only: read it through the file reader, which
    // opens the footer without touching any record batch.
    let stored: string | undefined;
    try {
      const reader = await RecordBatchReader.from(fh);
      await reader.open({ autoDestroy: false });
      stored = reader.schema?.metadata.get(KEY);
    } catch (error) {
      throw new DamagedCacheError(`pixel cache ${file} has an unreadable footer (${(error as Error).message})`);
    }
    if (stored !== JSON.stringify(key)) {
      const old = (() => {
        try {
          return JSON.parse(stored ?? 'null') as Record<string, unknown> | null;
        } catch {
          return null;
        }
      })();
      const differs = old ? Object.keys(key).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(key[k as keyof CacheKey])) : [];
      if (differs.length === 1 && differs[0] === 'files') {
        throw new DatasetError(
          `pixel cache ${file} was built from files that have changed since (a size, modification or change time, or inode differs): its pixels are stale; delete it to rebuild`,
        );
      }
      throw new DatasetError(`pixel cache ${file} was built for ${cacheDifference(old, key)}: delete it to rebuild it`);
    }
    const sampleSize = key.height * key.width * key.channels;
    const raw = key.encoding === 'raw';
    const lengths = raw ? null : new Uint32Array(key.samples);
    const offsets = new Float64Array(key.samples).fill(-1);
    const crcs = new Uint32Array(key.samples);
    const errors = new Map<number, string>();
    let seen = 0;
    let position = 8;
    while (position + 8 <= size) {
      const prefix = new DataView((await readExactly(fh, position, 8, file)).buffer);
      let metaLength = prefix.getInt32(0, true);
      let headerBytes = 4;
      if (metaLength === -1) {
        metaLength = prefix.getInt32(4, true);
        headerBytes = 8;
      }
      if (metaLength === 0) break; // end-of-stream marker; the footer follows
      if (metaLength < 0 || position + headerBytes + metaLength > size)
        throw new DamagedCacheError(`pixel cache ${file} has a damaged message at byte ${position}`);
      let message: Message;
      try {
        message = Message.decode(await readExactly(fh, position + headerBytes, metaLength, file));
      } catch (error) {
        if (error instanceof DamagedCacheError) throw error;
        throw new DamagedCacheError(`pixel cache ${file} has a damaged message at byte ${position} (${(error as Error).message})`);
      }
      const body = position + headerBytes + metaLength;
      if (message.isRecordBatch()) {
        const header = message.header();
        const rows = header.length;
        // Buffers in schema order: sample (validity, data); raw pixels (validity) and their values
        // (validity, data), or encoded pixels (validity, offsets, data); error (validity, offsets,
        // data); crc32 (validity, data). Nodes: sample, pixels, [values,] error, crc32.
        const [, samplesBuf, , pixelOffsetsBuf, pixelsBuf, , errorOffsetsBuf, errorDataBuf, , crcBuf] = header.buffers;
        if (
          !samplesBuf ||
          !pixelOffsetsBuf ||
          !pixelsBuf ||
          !errorOffsetsBuf ||
          !errorDataBuf ||
          !crcBuf ||
          (raw && pixelsBuf.length < rows * sampleSize) ||
          header.compression
        ) {
          throw new DamagedCacheError(`pixel cache ${file} has an unexpected layout`);
        }
        const samples = new Uint32Array((await readExactly(fh, body + samplesBuf.offset, rows * 4, file)).buffer);
        const rowCrcs = new Uint32Array((await readExactly(fh, body + crcBuf.offset, rows * 4, file)).buffer);
        const rowOffsets = raw ? null : new Int32Array((await readExactly(fh, body + pixelOffsetsBuf.offset, (rows + 1) * 4, file)).buffer);
        if (rowOffsets && (rowOffsets[0] !== 0 || rowOffsets[rows]! > pixelsBuf.length))
          throw new DamagedCacheError(`pixel cache ${file} has damaged row offsets at byte ${body + pixelOffsetsBuf.offset}`);
        for (let r = 0; r < rows; r++) {
          if (samples[r]! >= key.samples) throw new DamagedCacheError(`pixel cache ${file} names sample ${samples[r]} of ${key.samples}`);
          offsets[samples[r]!] = body + pixelsBuf.offset + (rowOffsets ? rowOffsets[r]! : r * sampleSize);
          if (rowOffsets) lengths![samples[r]!] = rowOffsets[r + 1]! - rowOffsets[r]!;
          crcs[samples[r]!] = rowCrcs[r]!;
        }
        if (header.nodes[3]!.nullCount < rows) {
          const errorOffsets = new Int32Array((await readExactly(fh, body + errorOffsetsBuf.offset, (rows + 1) * 4, file)).buffer);
          const data = Buffer.from(await readExactly(fh, body + errorDataBuf.offset, errorDataBuf.length, file));
          for (let r = 0; r < rows; r++) {
            if (errorOffsets[r + 1]! > errorOffsets[r]!) {
              errors.set(samples[r]!, data.subarray(errorOffsets[r]!, errorOffsets[r + 1]!).toString('utf8'));
              offsets[samples[r]!] = -1;
            }
          }
        }
        seen += rows;
      }
      position = body + message.bodyLength;
    }
    if (seen !== key.samples) {
      throw new DamagedCacheError(`pixel cache ${file} holds ${seen} of ${key.samples} samples`);
    }
    return { file, offsets, crcs, errors, ...(lengths ? { encoded: { encoding: parseCacheFormat(key.encoding), lengths } } : {}) };
  } finally {
    await fh.close();
  }
}

/** The key stored in a cache file's footer, or null when it has none. */
async function storedKey(file: string): Promise<CacheKey | null> {
  const fh = await open(file, 'r');
  try {
    const reader = await RecordBatchReader.from(fh);
    await reader.open({ autoDestroy: false });
    const text = reader.schema?.metadata.get(KEY);
    return text ? (JSON.parse(text) as CacheKey) : null;
  } catch (error) {
    throw new DatasetError(
      `pixel cache shard ${file} is damaged (not readable: ${(error as Error).message}); rebuild the directory with featherstack cache --queue`,
    );
  } finally {
    await fh.close();
  }
}

/**
 * A sharded pixel cache: a directory of `pixels-<n>.arrow` files (built by workers, one per shard of
 * the dataset), read as one cache. Shard n holds the next rows of the dataset: its stored key must
 * be the key of exactly those files (paths, sizes, modification times) and settings, so a stale,
 * foreign, damaged or missing shard is refused by name. Read-only: nothing is removed or rebuilt
 * here (the directory is shared; `featherstack cache --queue` rebuilds it).
 */
export async function openShardedPixelCache(dir: string, image: ImageSpec, root: string, filenames: string[]): Promise<PixelCacheIndex> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => isShardFileName(f, 'pixels')).sort();
  } catch (error) {
    throw new DatasetError(`cannot read pixel cache directory ${dir}: ${(error as Error).message}`);
  }
  if (names.length === 0) throw new DatasetError(`pixel cache directory ${dir} holds no pixels-<n>.arrow shards`);
  const offsets = new Float64Array(filenames.length).fill(-1);
  const crcs = new Uint32Array(filenames.length);
  const errors = new Map<number, string>();
  const files = new Array<string>(filenames.length);
  let start = 0;
  for (const name of names) {
    const file = join(dir, name);
    const stored = await storedKey(file);
    if (!stored || !Number.isSafeInteger(stored.samples)) throw new DatasetError(`pixel cache shard ${file} is not a featherstack pixel cache`);
    if (start + stored.samples > filenames.length) throw new DatasetError(`pixel cache shard ${file} holds rows past the dataset's ${filenames.length}`);
    const slice = filenames.slice(start, start + stored.samples);
    const key = cacheKey(image, slice, await fileStamp(slice.map((f) => resolve(root, f))));
    let index: PixelCacheIndex | null;
    try {
      index = await readPixelCache(file, key);
    } catch (error) {
      if (!(error instanceof DamagedCacheError)) throw error;
      throw new DatasetError(`pixel cache shard ${file} is damaged (${error.message}); rebuild the directory with featherstack cache --queue`);
    }
    if (!index) throw new DatasetError(`pixel cache shard ${file} is missing`);
    for (let i = 0; i < stored.samples; i++) {
      offsets[start + i] = index.offsets[i]!;
      crcs[start + i] = index.crcs[i]!;
      files[start + i] = file;
    }
    for (const [sample, reason] of index.errors) errors.set(start + sample, reason);
    start += stored.samples;
  }
  if (start !== filenames.length)
    throw new DatasetError(`pixel cache directory ${dir} holds ${start} of the dataset's ${filenames.length} rows (shards missing)`);
  return { file: files[0]!, files, offsets, crcs, errors };
}
