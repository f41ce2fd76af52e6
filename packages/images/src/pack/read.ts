/**
 * Reading a pack during one epoch. Shards are read whole, in the order the epoch first needs them
 * (one sequential read each), with the next one read ahead while the current one's images decode.
 * Each needed image's bytes are copied out and the shard's buffer is dropped at once: with a
 * shuffle buffer a shard's last images can be asked for long after its first, and holding the
 * shard for them would keep several shards alive. Memory stays at about one shard read ahead plus
 * the images read but not yet handed to a worker (about a shard's worth plus the shuffle buffer).
 * @internal
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import type { SampleSource } from '../pool/protocol.js';
import { parseShard, readPackIndex, type ShardRows } from './format.js';

/** What a flow reads from a pack: its shard files and, per flow sample, where it is stored. */
export interface PackSource {
  dir: string;
  /** Shard file names, and the rows each holds. */
  files: string[];
  rows: number[];
  /** Per flow sample (pack order): its shard and row. */
  shard: Uint32Array;
  row: Uint32Array;
  /** Samples the shuffle buffer holds. */
  buffer: number;
  /** How a shard file's bytes become rows (default: a pack shard's; WebDataset tars have their own). */
  parse?: (file: string, bytes: Uint8Array, rows: number) => ShardRows;
}

async function readWhole(file: string): Promise<Buffer> {
  const handle = await open(file, 'r').catch((error: Error) => {
    throw new DatasetError(`pack shard ${file} cannot be opened: ${error.message}`);
  });
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) throw new DatasetError(`pack shard ${file} ends at byte ${done} of ${size}`);
      done += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Serves the image bytes of one epoch's samples, in any order of requests, each sample once. */
export class PackEpochReader {
  private readonly held = new Map<number, { bytes: Uint8Array; crc: number }>();
  private readonly loads = new Map<number, Promise<void>>();
  private readonly ahead = new Map<number, Promise<Buffer>>();
  /** Shards in the order the epoch first needs them, and where each sits in that order. */
  private readonly needs: number[];
  private readonly rank: Int32Array;
  /** Per shard: flow sample of each row (or -1), for the rows this epoch still yields. */
  private readonly wanted: Int32Array[];

  constructor(
    private readonly pack: PackSource,
    order: Uint32Array,
    start: number,
  ) {
    const shards = pack.files.length;
    this.wanted = pack.rows.map((n) => new Int32Array(n).fill(-1));
    const first = new Array<number>(shards).fill(Number.POSITIVE_INFINITY);
    for (let p = start; p < order.length; p++) {
      const sample = order[p]!;
      const s = pack.shard[sample]!;
      this.wanted[s]![pack.row[sample]!] = sample;
      if (first[s] === Number.POSITIVE_INFINITY) first[s] = p;
    }
    this.needs = [...first.keys()].filter((s) => first[s] !== Number.POSITIVE_INFINITY).sort((a, b) => first[a]! - first[b]!);
    this.rank = new Int32Array(shards).fill(-1);
    for (const [k, s] of this.needs.entries()) this.rank[s] = k;
  }

  /** Images read but not yet handed out (a measure of the reader's memory). */
  get heldImages(): number {
    return this.held.size;
  }

  private path(s: number): string {
    return join(this.pack.dir, this.pack.files[s]!);
  }

  private read(s: number): Promise<Buffer> {
    let bytes = this.ahead.get(s);
    if (!bytes) {
      bytes = readWhole(this.path(s));
      bytes.catch(() => {}); // observed by load()
    }
    this.ahead.delete(s);
    return bytes;
  }

  private load(s: number): Promise<void> {
    let loading = this.loads.get(s);
    if (loading) return loading;
    loading = (async () => {
      const bytes = await this.read(s);
      // The next shard is read while this one's images decode.
      const next = this.needs[this.rank[s]! + 1];
      if (next !== undefined && !this.loads.has(next) && !this.ahead.has(next)) {
        const ahead = readWhole(this.path(next));
        ahead.catch(() => {});
        this.ahead.set(next, ahead);
      }
      const rows = (this.pack.parse ?? parseShard)(this.path(s), bytes, this.pack.rows[s]!);
      const wanted = this.wanted[s]!;
      for (let r = 0; r < wanted.length; r++) {
        const sample = wanted[r]!;
        if (sample < 0) continue;
        this.held.set(sample, { bytes: rows.values.slice(rows.offsets[r]!, rows.offsets[r + 1]!), crc: rows.crcs ? rows.crcs[r]! : -1 });
      }
    })();
    this.loads.set(s, loading);
    return loading;
  }

  /** The bytes of `samples` as one task's source: copied into one shared buffer, then released here. */
  async sourceFor(samples: number[], paths: (sample: number) => string): Promise<SampleSource> {
    const shards = new Set(samples.map((k) => this.pack.shard[k]!));
    await Promise.all([...shards].map((s) => this.load(s)));
    const parts = samples.map((k) => {
      const part = this.held.get(k);
      if (!part) throw new Error(`pack ${this.pack.dir}: sample ${k} asked for twice or not in this epoch`);
      this.held.delete(k);
      return part;
    });
    const total = parts.reduce((a, p) => a + p.bytes.length, 0);
    const data = new SharedArrayBuffer(Math.max(1, total));
    const view = new Uint8Array(data);
    const offsets: number[] = [];
    let at = 0;
    for (const p of parts) {
      offsets.push(at);
      view.set(p.bytes, at);
      at += p.bytes.length;
    }
    return {
      kind: 'bytes',
      data,
      offsets,
      lengths: parts.map((p) => p.bytes.length),
      crcs: parts.map((p) => p.crc),
      paths: samples.map((k) => `${paths(k)} (in ${this.path(this.pack.shard[k]!)})`),
    };
  }

  /** Drops what is held (the epoch ended or was abandoned). */
  close(): void {
    this.held.clear();
    this.ahead.clear();
  }
}

/**
 * The stored bytes of the images at `paths` (relative, as in the pack's index), reading only the
 * shards that hold them: for tools that need a few images by name (a report's samples).
 *
 * @example
 * const [bytes] = await readPackImages('packs/train', ['cat/cat.1.jpg']);
 */
export async function readPackImages(dir: string, paths: string[]): Promise<Buffer[]> {
  const index = await readPackIndex(dir);
  const where = new Map(index.paths.map((p, i) => [p, i]));
  const rows = paths.map((p) => {
    const i = where.get(p);
    if (i === undefined) throw new DatasetError(`pack ${dir} holds no image ${p}`);
    return i;
  });
  const source: PackSource = {
    dir,
    files: index.manifest.shards.map((s) => s.file),
    rows: index.manifest.shards.map((s) => s.samples),
    shard: index.shard,
    row: index.row,
    buffer: 1,
  };
  return readImages(source, rows);
}

/** The stored bytes of a pack source's `samples` (flow sample indices), reading only their shards. */
export async function readImages(pack: PackSource, samples: number[]): Promise<Buffer[]> {
  const out = new Array<Buffer>(samples.length);
  for (const s of new Set(samples.map((i) => pack.shard[i]!))) {
    const file = join(pack.dir, pack.files[s]!);
    const shard = (pack.parse ?? parseShard)(file, await readWhole(file), pack.rows[s]!);
    for (const [k, i] of samples.entries()) {
      if (pack.shard[i] !== s) continue;
      const r = pack.row[i]!;
      out[k] = Buffer.from(shard.values.slice(shard.offsets[r]!, shard.offsets[r + 1]!));
    }
  }
  return out;
}
