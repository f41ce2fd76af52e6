/**
 * WebDataset tar shards as a source (the de-facto layout of large image sets): each tar holds
 * samples as consecutive entries sharing a key — the entry's path up to the first dot of its file
 * name — one image (`key.jpg`, `key.png`, …) and its class index as text (`key.cls`). Tars are
 * parsed with node-tar; a flow reads them as it reads pack shards (read.ts): whole, in a shuffled
 * order, through the shuffle buffer.
 * @internal
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { DatasetError, invalidOption } from '../errors.js';
import { concatBytes, type ShardRows } from './format.js';

const IMAGE_EXTENSIONS = new Set(['jpg', 'jpeg', 'png', 'ppm', 'pgm', 'pnm', 'bmp', 'tif', 'tiff', 'webp', 'gif']);

/**
 * Expands WebDataset's brace notation: `train-{0000..0099}.tar` (zero-padded ranges) and
 * `{a,b}` lists, any number of them.
 */
export function expandBraces(pattern: string): string[] {
  const m = /\{([^{}]*)\}/.exec(pattern);
  if (!m) return [pattern];
  const [head, tail] = [pattern.slice(0, m.index), pattern.slice(m.index + m[0].length)];
  const range = /^(\d+)\.\.(\d+)$/.exec(m[1]!);
  let parts: string[];
  if (range) {
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (to < from) throw invalidOption('tar pattern', 'ranges {a..b} with a ≤ b', pattern);
    if (to - from >= 1_000_000) throw invalidOption('tar pattern', 'ranges of fewer than a million shards', pattern);
    const width = range[1]!.length;
    parts = Array.from({ length: to - from + 1 }, (_, i) => String(from + i).padStart(width, '0'));
  } else parts = m[1]!.split(',');
  return parts.flatMap((p) => expandBraces(`${head}${p}${tail}`));
}

/** A sample of a tar: its key, its image entry's bytes, and its class text (or null). */
interface TarSample {
  key: string;
  name: string;
  bytes: Uint8Array;
  cls: string | null;
}

/**
 * The samples of one tar, in entry order; with `images: false` their image bytes are skipped (left
 * empty), for an index. Refuses a key without an image, or with two, by tar and key.
 */
export function parseTar(file: string, bytes: Uint8Array, images = true): TarSample[] {
  const samples: TarSample[] = [];
  const byKey = new Map<string, { key: string; name: string | null; bytes: Uint8Array | null; cls: string | null }>();
  const order: string[] = [];
  let failure: Error | null = null;
  const parser = new Parser({
    strict: true,
    onwarn: (_code: string, message: string | Error) => {
      failure ??= new DatasetError(`tar ${file}: ${typeof message === 'string' ? message : message.message}`);
    },
    onReadEntry: (entry: ReadEntry) => {
      if (entry.type !== 'File' && entry.type !== 'OldFile') {
        entry.resume();
        return;
      }
      const name = entry.path;
      const base = basename(name);
      const dot = base.indexOf('.');
      const key = join(dirname(name), dot < 0 ? base : base.slice(0, dot));
      const ext = dot < 0 ? '' : base.slice(dot + 1).toLowerCase();
      const last = ext.split('.').pop()!;
      const image = IMAGE_EXTENSIONS.has(last);
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => {
        if (images || !image) chunks.push(c);
      });
      entry.on('end', () => {
        let s = byKey.get(key);
        if (!s) {
          s = { key, name: null, bytes: null, cls: null };
          byKey.set(key, s);
          order.push(key);
        }
        if (image) {
          if (s.name !== null) failure ??= new DatasetError(`tar ${file}: sample '${key}' has two images (${s.name} and ${name})`);
          s.name = name;
          s.bytes = Buffer.concat(chunks);
        } else if (ext === 'cls') s.cls = Buffer.concat(chunks).toString('utf8').trim();
      });
    },
  });
  parser.on('error', (error: Error) => {
    failure ??= new DatasetError(`tar ${file} cannot be read: ${error.message}`);
  });
  parser.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  parser.end();
  if (failure) throw failure;
  for (const key of order) {
    const s = byKey.get(key)!;
    if (s.name === null || s.bytes === null)
      throw new DatasetError(`tar ${file}: sample '${key}' has no image (entries with image extensions: ${[...IMAGE_EXTENSIONS].join(', ')})`);
    samples.push({ key, name: s.name, bytes: s.bytes, cls: s.cls });
  }
  return samples;
}

/** One tar's samples as shard rows (no CRCs: a tar has none). */
/**
 * One tar's samples as shard rows (no CRCs: a tar has none), checked against the image names the
 * flow indexed when it was made: a tar rewritten since is refused, never read with stale labels.
 */
export function tarRows(file: string, bytes: Uint8Array, names: readonly string[]): ShardRows {
  const parsed = parseTar(file, bytes);
  const changed = parsed.length !== names.length ? -1 : parsed.findIndex((s, i) => s.name !== names[i]);
  if (parsed.length !== names.length || changed >= 0)
    throw new DatasetError(
      `tar ${file} changed since the flow was made (${parsed.length !== names.length ? `${parsed.length} samples, not ${names.length}` : `entry ${changed} is ${parsed[changed]!.name}, not ${names[changed]}`}); make the flow again`,
    );
  return { ...concatBytes(parsed.map((s) => s.bytes)), crcs: null };
}

/** What a flow needs of a set of tars: per tar its samples' names and class texts. */
export async function indexTars(files: string[]): Promise<{ names: string[][]; classes: (string | null)[][] }> {
  const names: string[][] = [];
  const classes: (string | null)[][] = [];
  for (const file of files) {
    const bytes = await readFile(file).catch((error: Error) => {
      throw new DatasetError(`tar ${file} cannot be read: ${error.message}`);
    });
    const samples = parseTar(file, bytes, false);
    names.push(samples.map((s) => s.name));
    classes.push(samples.map((s) => s.cls));
  }
  return { names, classes };
}
