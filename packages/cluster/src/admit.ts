/**
 * The queue's trust boundary. A job is data from Redis: anyone who can write to that Redis can
 * write a job. A worker therefore admits a job only after checking every field against its own
 * configuration: known keys only, sizes bounded, images and models under its read roots (symlinks
 * resolved), and the shard directory under its write roots. The shard's file name is derived by
 * the worker from a checked index, never taken from the job.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { COLOR_MODES } from '@featherstack/common';
import type { ShardJob } from './jobs.js';

/** Where jobs may make this worker read (images, models) and write (shard directories). */
export interface WorkerRoots {
  read: string[];
  write: string[];
}

/** A job's JSON above this size is refused before any field is read. */
export const MAX_JOB_BYTES = 16 * 2 ** 20;
/** Rows of one shard (the coordinator's default shard is 1,000). */
export const MAX_SHARD_ROWS = 100_000;

export class JobRefusedError extends Error {
  override readonly name = 'JobRefusedError';
  readonly code = 'FEATHERSTACK_JOB_REFUSED';
}

/** The roots, resolved through symlinks once; a root that does not exist is refused by its flag. */
export async function resolveRoots(roots: WorkerRoots): Promise<WorkerRoots> {
  const real = async (list: string[], flag: string) => {
    if (list.length === 0) throw new JobRefusedError(`${flag}: at least one directory is needed`);
    return Promise.all(
      list.map((dir) =>
        realpath(resolve(dir)).catch(() => {
          throw new JobRefusedError(`${flag} ${dir}: no such directory`);
        }),
      ),
    );
  };
  return { read: await real(roots.read, '--root'), write: await real(roots.write, '--output-root') };
}

/**
 * Checks `data` (a job as it came from Redis) against `roots` (resolved with resolveRoots) and
 * returns it typed; anything else is refused with a JobRefusedError naming the field.
 */
export async function admitJob(data: unknown, roots: WorkerRoots): Promise<ShardJob> {
  const size = Buffer.byteLength(JSON.stringify(data) ?? '');
  if (size > MAX_JOB_BYTES) refuse('job', `is ${size} bytes, more than the ${MAX_JOB_BYTES} a shard of ${MAX_SHARD_ROWS} rows needs`);
  const job = record(data, 'job', ['kind', 'set', 'model', 'image', 'pack', 'root', 'classNames', 'paths', 'labels', 'shard', 'output']);
  const kind = oneOf(job.kind, 'kind', ['features', 'pixels', 'pack'] as const);
  const set = text(job.set, 'set');
  if (!/^[0-9a-f]{16}$/.test(set)) refuse('set', 'must be 16 hexadecimal digits (the coordinator derives it)');
  const classNames = list(job.classNames, 'classNames', 100_000).map((c, i) => {
    const name = text(c, `classNames[${i}]`);
    if (name.length === 0 || name.includes('/') || name.includes('\\') || name === '.' || name === '..') refuse(`classNames[${i}]`, 'is not a folder name');
    return name;
  });
  const paths = list(job.paths, 'paths', MAX_SHARD_ROWS).map((p, i) => relativePath(p, `paths[${i}]`));
  const labels = list(job.labels, 'labels', MAX_SHARD_ROWS).map((l, i) => integer(l, `labels[${i}]`, 0, classNames.length - 1));
  if (labels.length !== paths.length) refuse('labels', `has ${labels.length} entries for ${paths.length} paths`);
  const shard = shardOf(job.shard, paths.length);
  const image = kind === 'pack' ? nothing(job.image, 'image', kind) : imageOf(job.image);
  const root = await under(absolute(job.root, 'root'), roots.read, 'root', '--root');
  await Promise.all(paths.map((p, i) => under(join(root, p), roots.read, `paths[${i}]`, '--root')));
  const output = await under(absolute(job.output, 'output'), roots.write, 'output', '--output-root');
  const model = kind === 'features' ? await modelOf(job.model, roots) : nothing(job.model, 'model', kind);
  const pack = kind === 'pack' ? packOf(job.pack, paths.length) : nothing(job.pack, 'pack', kind);
  return { kind, set, model, image, pack, root, classNames, paths, labels, shard, output };
}

function refuse(field: string, problem: string): never {
  throw new JobRefusedError(`job refused: ${field} ${problem}`);
}

function record(value: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(field, 'must be an object');
  const unknown = Object.keys(value).filter((k) => !keys.includes(k));
  if (unknown.length > 0) refuse(field, `has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`);
  const missing = keys.filter((k) => !(k in value));
  if (missing.length > 0) refuse(field, `lacks ${missing.join(', ')}`);
  return value as Record<string, unknown>;
}

/** A string of printable characters: nothing that reaches a log or `queue status` can drive a terminal. */
function text(value: unknown, field: string, max = 4096): string {
  if (typeof value !== 'string') refuse(field, 'must be a string');
  if (value.length > max) refuse(field, `is longer than ${max} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value)) refuse(field, 'holds control characters');
  return value;
}

function list(value: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(value)) refuse(field, 'must be an array');
  if (value.length > max) refuse(field, `has ${value.length} entries, more than ${max}`);
  return value;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) refuse(field, `must be an integer from ${min} to ${max}`);
  return value;
}

function oneOf<T extends string>(value: unknown, field: string, options: readonly T[]): T {
  if (!options.includes(value as T)) refuse(field, `must be one of ${options.join(', ')}`);
  return value as T;
}

function nothing(value: unknown, field: string, kind: string): null {
  if (value !== null) refuse(field, `must be null for a ${kind === 'pixels' ? 'pixel' : kind === 'pack' ? 'pack' : 'feature'} shard`);
  return null;
}

/** A pack shard's encoding (the original bytes, or JPEG of a bounded side and quality) and listing indices. */
function packOf(value: unknown, rows: number): NonNullable<ShardJob['pack']> {
  const p = record(value, 'pack', ['encoding', 'indices']);
  const e = p.encoding as Record<string, unknown> | null;
  const kind = oneOf(e?.kind, 'pack.encoding.kind', ['original', 'jpeg'] as const);
  let encoding: NonNullable<ShardJob['pack']>['encoding'];
  if (kind === 'original') {
    record(e, 'pack.encoding', ['kind']);
    encoding = { kind };
  } else {
    const j = record(e, 'pack.encoding', ['kind', 'maxSide', 'quality']);
    encoding = {
      kind,
      maxSide: j.maxSide === null ? null : integer(j.maxSide, 'pack.encoding.maxSide', 1, 65_535),
      quality: integer(j.quality, 'pack.encoding.quality', 1, 100),
    };
  }
  const indices = list(p.indices, 'pack.indices', MAX_SHARD_ROWS).map((v, i) => integer(v, `pack.indices[${i}]`, 0, 2 ** 32 - 1));
  if (indices.length !== rows) refuse('pack.indices', `has ${indices.length} entries for ${rows} paths`);
  return { encoding, indices };
}

function absolute(value: unknown, field: string): string {
  const path = text(value, field);
  if (!isAbsolute(path) || path.split(/[/\\]/).some((s) => s === '.' || s === '..')) refuse(field, 'must be an absolute path without . or .. segments');
  return path;
}

function relativePath(value: unknown, field: string): string {
  const path = text(value, field);
  if (path.length === 0 || isAbsolute(path) || path.split(/[/\\]/).some((s) => s === '..' || s === '.' || s === ''))
    refuse(field, 'must be a relative path without . or .. segments');
  return path;
}

/** `path` inside one of `roots` once symlinks are resolved (its nearest existing ancestor's, when it does not exist yet). */
async function under(path: string, roots: string[], field: string, flag: string): Promise<string> {
  const real = await resolveExisting(path);
  const inside = (root: string) => {
    const r = relative(root, real);
    return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
  };
  if (!roots.some(inside)) refuse(field, `${JSON.stringify(path)} is outside this worker's ${flag} (${roots.join(', ')})`);
  return path;
}

async function resolveExisting(path: string): Promise<string> {
  const tail: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      return join(await realpath(p), ...tail);
    } catch {
      if (dirname(p) === p) refuse('path', `${JSON.stringify(path)} cannot be resolved`);
      tail.unshift(basename(p));
    }
  }
}

function shardOf(value: unknown, rows: number): ShardJob['shard'] {
  const s = record(value, 'shard', ['index', 'count', 'start', 'end']);
  const count = integer(s.count, 'shard.count', 1, 10_000_000);
  const index = integer(s.index, 'shard.index', 0, count - 1);
  const start = integer(s.start, 'shard.start', 0, Number.MAX_SAFE_INTEGER);
  const end = integer(s.end, 'shard.end', start, Number.MAX_SAFE_INTEGER);
  if (end - start !== rows) refuse('shard', `spans rows ${start}–${end} but carries ${rows} paths`);
  return { index, count, start, end };
}

function imageOf(value: unknown): NonNullable<ShardJob['image']> {
  const i = record(value, 'image', ['imageSize', 'colorMode', 'rescale', 'preprocess', 'batchSize']);
  const size = list(i.imageSize, 'image.imageSize', 2);
  if (size.length !== 2) refuse('image.imageSize', 'must be [height, width]');
  const imageSize = size.map((v, k) => integer(v, `image.imageSize[${k}]`, 1, 16_384)) as [number, number];
  const colorMode = oneOf(i.colorMode, 'image.colorMode', COLOR_MODES);
  if (typeof i.rescale !== 'number' || !Number.isFinite(i.rescale)) refuse('image.rescale', 'must be a finite number');
  const preprocess = oneOf(i.preprocess, 'image.preprocess', ['none', 'tf', 'caffe', 'torch'] as const);
  const batchSize = i.batchSize === null ? null : integer(i.batchSize, 'image.batchSize', 1, 4096);
  return { imageSize, colorMode, rescale: i.rescale, preprocess, batchSize };
}

async function modelOf(value: unknown, roots: WorkerRoots): Promise<NonNullable<ShardJob['model']>> {
  const m = record(value, 'model', ['path', 'sha256', 'featureLayer', 'pooling']);
  const path = await under(absolute(m.path, 'model.path'), roots.read, 'model.path', '--root');
  const sha256 = text(m.sha256, 'model.sha256');
  if (!/^[0-9a-f]{64}$/.test(sha256)) refuse('model.sha256', 'must be 64 hexadecimal digits');
  const featureLayer = m.featureLayer === null ? null : text(m.featureLayer, 'model.featureLayer', 256);
  const pooling = oneOf(m.pooling, 'model.pooling', ['avg', 'max', 'none'] as const);
  return { path, sha256, featureLayer, pooling };
}
