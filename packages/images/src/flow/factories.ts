/**
 * The ways to make a flow: over a directory of class folders (flow_from_directory), a manifest
 * (flow_from_dataframe), a list of files (prediction) or an array in memory (flow). File flows open
 * their pixel cache here, once the files' sizes and modification times are known.
 */
import { dirname, relative, resolve } from 'node:path';
import { stat, statfs } from 'node:fs/promises';
import { openPixelCache, openShardedPixelCache } from '../cache.js';
import { DatasetError, invalidOption } from '../errors.js';
import type { PixelType } from '../image-spec.js';
import { listDirectory, type Manifest } from '../sources/directory.js';
import { type ManifestOptions, readManifest } from '../sources/manifest.js';
import { ImageFlow } from './flow.js';
import type { BaseFlowOptions, FileFlowOptions, FlowOptions } from './options.js';
import { checkShard, type FlowSource, type Shard } from './order.js';
import { readdir } from 'node:fs/promises';
import { isPack, readPackIndex } from '../pack/format.js';
import type { PackSource } from '../pack/read.js';
import { expandBraces, indexTars, tarRows } from '../pack/tar.js';

function checkOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'an object', options);
}

async function withCache(
  manifest: Manifest,
  options: FileFlowOptions,
  rest: Omit<FlowSource, 'manifest'> = {},
  stamp: string | null = null,
): Promise<ImageFlow> {
  const flow = new ImageFlow({ manifest, ...rest }, options);
  // A directory is a sharded cache (built by workers): read as one, never written here.
  if (flow.cachePath && (await stat(flow.cachePath).catch(() => null))?.isDirectory()) {
    try {
      // featherstack cache --queue writes raw shards only: another format asked of one is refused, not read as raw.
      if (flow.cacheFormat !== 'raw')
        throw invalidOption(
          'cacheFormat',
          `raw (or unset) for the sharded pixel cache directory ${flow.cachePath}, whose shards hold raw pixels`,
          options.cacheFormat,
        );
      flow.useCache(await openShardedPixelCache(flow.cachePath, flow.image, flow.root, flow.filenames));
    } catch (error) {
      await flow.close();
      throw error;
    }
    return flow;
  }
  if (flow.cachePath) {
    const index = await flow
      .stampFiles(stamp ?? undefined)
      .then(() => openPixelCache(flow.cachePath!, flow.pixelCacheKey))
      .catch(async (error) => {
        await flow.close();
        throw error;
      });
    if (index) flow.useCache(index);
    else await planCacheWrite(flow, options.cacheBudget);
  }
  return flow;
}

/**
 * Bytes a pixel cache of `samples` rows of `sampleSize` pixels takes: the pixels, 12 bytes a row
 * (sample index, CRC-32, error offset), and each record batch's message and buffer padding.
 */
export function pixelCacheBytes(samples: number, sampleSize: number, batchSize: number): number {
  return samples * (sampleSize + 12) + Math.ceil(samples / batchSize) * 1024 + 8192;
}

/** Free bytes for an unprivileged writer on the filesystem that holds `path` (or would, once made). */
async function freeBytes(path: string): Promise<number> {
  for (let dir = path; ; dir = dirname(dir)) {
    const fs = await statfs(dir).catch(() => null);
    if (fs) return fs.bavail * fs.bsize;
    if (dirname(dir) === dir) return Number.POSITIVE_INFINITY;
  }
}

/**
 * The disk a pixel cache written at `path` may take by default: half the bytes free (statfs) on the
 * filesystem that holds it, or would once made. `doctor` reports it for run's default --out.
 *
 * @example
 * const { free, budget } = await pixelCacheBudget('runs/latest/cache');
 */
export async function pixelCacheBudget(path: string): Promise<{ free: number; budget: number }> {
  const free = await freeBytes(resolve(path));
  return { free, budget: free / 2 };
}

/**
 * Whether the first full epoch writes the cache: a raw one only when its exact size fits the
 * budget; an encoded one (whose size shows only as it is encoded) is given up during that epoch
 * as soon as its rows would pass the budget or, after the first batch, would on current showing.
 */
async function planCacheWrite(flow: ImageFlow, given: number | undefined): Promise<void> {
  const path = flow.cachePath!;
  const format = flow.cacheFormat;
  const { height, width, channels } = flow.image;
  const raw = pixelCacheBytes(flow.samples, height * width * channels, flow.batchSize);
  const free = given === undefined ? (await pixelCacheBudget(dirname(path))).free : 0;
  const budget = given ?? free / 2;
  if (format !== 'raw' || raw <= budget) {
    flow.planCache({ state: 'write', path, format, bytes: format === 'raw' ? raw : null, budget });
    return;
  }
  const size = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
  const reason =
    `${flow.samples} images at ${height}×${width}×${channels} need ${size(raw)}, more than its budget of ${size(budget)} ` +
    `(${given === undefined ? `half the ${size(free)} free on its filesystem` : 'cacheBudget'}); epochs decode instead (raise cacheBudget, or free space, or store it encoded: png or jpeg:Q)`;
  flow.declineCache({ state: 'over-budget', path, format, bytes: raw, budget, reason });
}

/** Options of a sibling flow: a file flow's, less `shard` (its files are the flow's it is made from). */
export type SiblingFlowOptions = Omit<FileFlowOptions, 'shard'>;

/**
 * A flow over the very files of `flow` (a directory's or a manifest's, after its classes, subset
 * and shard), with options of its own: a plain extraction flow beside the augmented training flow.
 * The listing and the files' stamps (when `flow` has a pixel cache) are `flow`'s, not taken again.
 *
 * @example
 * const train = await flowFromDirectory('data/train', { targetSize: [224, 224], shuffle: true, augment, cache: 'pixels.arrow' });
 * const plain = await siblingFlow(train, { targetSize: [224, 224], shuffle: false, augment: { rescale: 1 / 255 }, cache: 'pixels.arrow' });
 */
export async function siblingFlow(flow: ImageFlow, options: SiblingFlowOptions = {}): Promise<ImageFlow> {
  if (!(flow instanceof ImageFlow)) throw invalidOption('flow', 'an ImageFlow', flow);
  checkOptions(options);
  const { shard } = options as FileFlowOptions;
  if (shard !== undefined) throw invalidOption('shard', 'unset for a sibling flow (it reads the files of the flow it is made from, shard and all)', shard);
  const { source, stamp } = flow.siblingSource;
  const { manifest, ...rest } = source;
  const sibling = await withCache(manifest, options, rest, stamp);
  sibling.excludedRows = flow.excludedRows;
  return sibling;
}

/**
 * Keras's `flow_from_directory`: one class per subdirectory of `directory`.
 *
 * @example
 * const flow = await flowFromDirectory('data/train', {
 *   targetSize: [224, 224], batchSize: 32, seed: 1,
 *   augment: { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true },
 * });
 * for await (const batch of flow) console.log(batch.shape);
 * await flow.close();
 */
export async function flowFromDirectory(directory: string, options: FlowOptions = {}): Promise<ImageFlow> {
  if (typeof directory !== 'string' || directory.length === 0) throw invalidOption('directory', 'a non-empty path', directory);
  checkOptions(options);
  return withCache(await listDirectory(directory, options), options);
}

/**
 * Keras's `flow_from_dataframe` over a CSV or Arrow manifest of paths and labels.
 *
 * @example
 * const flow = await flowFromManifest('data/labels.csv', {
 *   xCol: 'file', yCol: ['x', 'y'], classMode: 'raw', targetSize: [128, 128],
 * });
 */
export async function flowFromManifest(file: string, options: FileFlowOptions & ManifestOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  const m = await readManifest(file, options);
  const flow = await withCache(m, options, m.targets.length > 0 ? { targets: m.targets, outputWidths: m.outputWidths } : {});
  flow.excludedRows = m.excludedRows;
  return flow;
}

/**
 * A flow over a listing made elsewhere (listDirectory's Manifest, or a slice of one): the rows of
 * one shard of a dataset a coordinator listed once, with their labels and the dataset's classes.
 *
 * @example
 * const all = await listDirectory('data/train');
 * const part = { ...all, paths: all.paths.slice(0, 1000), labels: all.labels.slice(0, 1000) };
 * const flow = await flowFromListing(part, { targetSize: [224, 224], shuffle: false });
 */
export async function flowFromListing(listing: Manifest, options: FileFlowOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  const ok =
    typeof listing === 'object' &&
    listing !== null &&
    typeof listing.root === 'string' &&
    Array.isArray(listing.paths) &&
    listing.labels instanceof Int32Array &&
    listing.labels.length === listing.paths.length &&
    Array.isArray(listing.classNames);
  if (!ok) throw invalidOption('listing', '{ root, classNames, classIndices, paths, labels: Int32Array } with one label per path', typeof listing);
  return withCache(listing, options);
}

/**
 * A flow over a list of image files (paths absolute or relative to the working directory), in the
 * given order, without labels — for prediction.
 *
 * @example
 * const flow = await flowFromFiles(['a.jpg', 'b.png'], { targetSize: [224, 224], shuffle: false });
 */
export async function flowFromFiles(files: string[], options: FileFlowOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  if (!Array.isArray(files) || files.length === 0 || files.some((f) => typeof f !== 'string' || f.length === 0)) {
    throw invalidOption('files', 'a non-empty array of file paths', files);
  }
  const manifest: Manifest = {
    root: '',
    classNames: [],
    classIndices: {},
    paths: files.map((f) => resolve(f).slice(1)), // relative to the filesystem root: root + '/' + path
    labels: new Int32Array(files.length).fill(-1),
  };
  return withCache(manifest, { shuffle: false, ...options, classMode: 'none' });
}

/** An in-memory dataset for flowFromArray: NHWC pixels in 0–255 units. */
export interface ArrayInput {
  data: Uint8Array | Float32Array;
  /** [samples, height, width, channels] with channels 1, 3 or 4. */
  shape: [number, number, number, number];
}

/**
 * Keras's `flow(x, y)`: batches from images already in memory, augmented by the worker pool. The
 * pixels are shared with the workers without copying when `x.data` views a SharedArrayBuffer, and
 * copied into one once otherwise.
 *
 * @example
 * const flow = flowFromArray({ data: pixels, shape: [60000, 28, 28, 1] }, { y: labels, batchSize: 128 });
 */
export function flowFromArray(
  x: ArrayInput,
  options: BaseFlowOptions & {
    /** Class index of each sample (Keras's `y`). */
    y?: ArrayLike<number>;
    /** Names of the classes, in index order. Default '0', '1', …. */
    classNames?: string[];
    /** Numeric targets, n × k values (classMode 'raw'). */
    targets?: Float32Array;
  } = {},
): ImageFlow {
  checkOptions(options);
  if (typeof x !== 'object' || x === null || !(x.data instanceof Uint8Array || x.data instanceof Float32Array)) {
    throw invalidOption('x.data', 'a Uint8Array or Float32Array of NHWC pixels', typeof x?.data);
  }
  const shape = x.shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((v) => Number.isInteger(v) && v >= 1) || ![1, 3, 4].includes(shape[3])) {
    throw invalidOption('x.shape', '[samples, height, width, channels] with channels 1, 3 or 4', shape);
  }
  const [n, height, width, channels] = shape;
  if (x.data.length !== n * height * width * channels)
    throw invalidOption('x.data', `${n * height * width * channels} values for shape [${shape.join(', ')}]`, `${x.data.length} values`);
  const dtype: PixelType = x.data instanceof Uint8Array ? 'uint8' : 'float32';
  let data: SharedArrayBuffer;
  if (x.data.buffer instanceof SharedArrayBuffer && x.data.byteOffset === 0) data = x.data.buffer;
  else {
    data = new SharedArrayBuffer(x.data.byteLength);
    (dtype === 'uint8' ? new Uint8Array(data) : new Float32Array(data)).set(x.data);
  }
  const labels = new Int32Array(n).fill(-1);
  let classNames = options.classNames ?? [];
  if (options.y !== undefined) {
    if (options.y.length !== n) throw invalidOption('y', `${n} class indices (one per sample)`, `${options.y.length} values`);
    let max = -1;
    for (let i = 0; i < n; i++) {
      const c = options.y[i]!;
      if (!Number.isInteger(c) || c < 0) throw invalidOption(`y[${i}]`, 'a non-negative integer class index', c);
      labels[i] = c;
      max = Math.max(max, c);
    }
    if (classNames.length === 0) classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
    if (max >= classNames.length) throw invalidOption('classNames', `at least ${max + 1} names`, classNames);
  }
  let targets: Float32Array[] | undefined;
  let outputWidths: number[] | undefined;
  if (options.targets !== undefined) {
    if (!(options.targets instanceof Float32Array) || options.targets.length % n !== 0 || options.targets.length === 0) {
      throw invalidOption('targets', `a Float32Array of ${n} × k values`, options.targets?.length);
    }
    targets = [options.targets];
    outputWidths = [options.targets.length / n];
  }
  const classMode = options.classMode ?? (targets ? 'raw' : options.y !== undefined ? 'categorical' : 'none');
  const manifest: Manifest = {
    root: '(memory)',
    classNames,
    classIndices: Object.fromEntries(classNames.map((c, i) => [c, i])),
    paths: Array.from({ length: n }, (_, i) => `#${i}`),
    labels,
  };
  return new ImageFlow(
    { manifest, array: { data, dtype, height, width, channels: channels as 1 | 3 | 4 }, ...(targets ? { targets, outputWidths: outputWidths! } : {}) },
    { ...options, classMode },
  );
}

/**
 * What flows over shards (a pack's or tars) check alike: no pixel cache, and the shuffle buffer's
 * size (default 2048), which is returned.
 */
function streamedOptions(options: { cache?: unknown; shuffleBuffer?: number }, what: string): number {
  if (options.cache !== undefined) throw invalidOption('cache', `unset for ${what} (shards are read sequentially; no pixel cache is kept)`, options.cache);
  const buffer = options.shuffleBuffer ?? 2048;
  if (!(Number.isInteger(buffer) && buffer >= 1)) throw invalidOption('shuffleBuffer', 'a positive integer number of images', buffer);
  return buffer;
}

/**
 * Which of `shards` shard files a process reads for `shard` (all without one): k with k mod count =
 * index. More processes than shards is refused, naming `shards` (`of` describes them).
 */
function shardFilter(shard: Shard | undefined, shards: number, of: string): (k: number) => boolean {
  if (shard === undefined) return () => true;
  const { index, count } = checkShard(shard);
  if (count > shards) throw invalidOption('shard', `a count of at most ${of}`, shard);
  return (k) => k % count === index;
}

/** Options of a flow over a pack: a file flow's, less the pixel cache, plus the shuffle buffer. */
export interface PackFlowOptions extends Omit<FileFlowOptions, 'cache' | 'cacheFormat' | 'cacheBudget'> {
  /** Images the shuffle buffer holds (shuffled flows). Default 2048. */
  shuffleBuffer?: number;
  /** Class names in label order; images of other classes are left out. Default: the pack's classes. */
  classes?: string[];
  /** As flow_from_directory's: per class, the first `validationSplit` of its files (directory order) are 'validation'. */
  validationSplit?: number;
  subset?: 'training' | 'validation';
}

/**
 * A flow over a pack written by packDataset / `featherstack pack`: shards read sequentially in a
 * shuffled order, through a shuffle buffer, with the next shard read ahead. Decoding is that of
 * the loose files (the pack holds their bytes), so batches equal a directory flow's pixel for
 * pixel; the order is the pack's own. With `shard: { index, count }` a process reads the pack
 * shards k with k mod count = index.
 *
 * @example
 * await packDataset('data/train', 'packs/train');
 * const flow = await flowFromPack('packs/train', { targetSize: [224, 224], batchSize: 32, seed: 1 });
 * for await (const batch of flow) console.log(batch.size);
 */
export async function flowFromPack(dir: string, options: PackFlowOptions = {}): Promise<ImageFlow> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidOption('pack', 'a pack directory', dir);
  checkOptions(options);
  const rest = options as FlowOptions & PackFlowOptions;
  const buffer = streamedOptions(rest, 'a pack');
  const split = options.validationSplit ?? 0;
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) throw invalidOption('validationSplit', 'a number in [0, 1)', split);
  if (options.subset !== undefined && options.subset !== 'training' && options.subset !== 'validation')
    throw invalidOption('subset', "'training' or 'validation'", options.subset);
  if (options.subset !== undefined && split === 0) throw invalidOption('subset', 'used together with a validationSplit above 0', options.subset);
  const root = resolve(dir);
  const index = await readPackIndex(root);
  const { manifest } = index;
  const classNames = options.classes ?? manifest.classNames;
  if (!Array.isArray(classNames) || classNames.some((c) => typeof c !== 'string' || !manifest.classNames.includes(c)))
    throw invalidOption('classes', `names among the pack's classes (${manifest.classNames.join(', ')})`, options.classes);
  const relabel = new Int32Array(manifest.classNames.length).fill(-1);
  for (const [i, c] of classNames.entries()) relabel[manifest.classNames.indexOf(c)] = i;
  // validationSplit as on the directory: per class, ranks by directory listing order.
  let keep = Array.from({ length: manifest.samples }, (_, i) => i).filter((i) => relabel[index.labels[i]!]! >= 0);
  if (options.subset !== undefined) {
    const byClass = new Map<number, number[]>();
    for (const i of keep) {
      const c = index.labels[i]!;
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(i);
    }
    const validation = new Set<number>();
    for (const members of byClass.values()) {
      members.sort((a, b) => index.listing[a]! - index.listing[b]!);
      for (const i of members.slice(0, Math.floor(split * members.length))) validation.add(i);
    }
    keep = keep.filter((i) => validation.has(i) === (options.subset === 'validation'));
  }
  const mine = shardFilter(options.shard, manifest.shards.length, `the pack's ${manifest.shards.length} shards (repack with a smaller shardBytes)`);
  keep = keep.filter((i) => mine(index.shard[i]!));
  const files = manifest.shards.map((s, k) => (mine(k) ? s.file : ''));
  if (keep.length === 0) throw new DatasetError(`pack ${root}: no images left after classes, subset and shard`);
  const pack: PackSource = {
    dir: root,
    files,
    rows: manifest.shards.map((s) => s.samples),
    shard: Uint32Array.from(keep, (i) => index.shard[i]!),
    row: Uint32Array.from(keep, (i) => index.row[i]!),
    buffer,
  };
  const listing: Manifest = {
    root,
    classNames,
    classIndices: Object.fromEntries(classNames.map((c, i) => [c, i])),
    paths: keep.map((i) => index.paths[i]!),
    labels: Int32Array.from(keep, (i) => relabel[index.labels[i]!]!),
  };
  const { shard: _shard, shuffleBuffer: _b, classes: _c, validationSplit: _v, subset: _s, ...flowOptions } = rest;
  return new ImageFlow({ manifest: listing, pack }, flowOptions);
}

/** Options of a flow over WebDataset tars: a pack flow's, plus the class names of the `.cls` indices. */
export interface TarFlowOptions extends Omit<PackFlowOptions, 'classes' | 'validationSplit' | 'subset'> {
  /** Names of the classes, in index order. Default: '0', '1', … up to the largest `.cls` found. */
  classNames?: string[];
}

/**
 * A flow over WebDataset tar shards: `shards/train-{0000..0099}.tar` (brace ranges and lists
 * expanded), a list of tar files, or a directory of them. A sample is the entries sharing a key
 * (the path up to the first dot of the file name): one image (`.jpg`, `.png`, …) and its class
 * index as text (`.cls`). The tars are read once when the flow is made (their keys and labels) and
 * then streamed as pack shards are: whole, in a shuffled order, through the shuffle buffer.
 *
 * @example
 * const flow = await flowFromTar('shards/train-{0000..0009}.tar', { targetSize: [224, 224], classNames: ['cat', 'dog'] });
 */
export async function flowFromTar(source: string | string[], options: TarFlowOptions = {}): Promise<ImageFlow> {
  checkOptions(options);
  let files: string[];
  if (Array.isArray(source)) files = source.map((f) => resolve(f));
  else if (typeof source === 'string' && source.length > 0) {
    const st = await stat(source).catch(() => null);
    files = st?.isDirectory()
      ? (await readdir(source))
          .filter((f) => f.endsWith('.tar'))
          .sort()
          .map((f) => resolve(source, f))
      : expandBraces(source).map((f) => resolve(f));
  } else throw invalidOption('tars', 'a pattern, a directory or a list of .tar files', source);
  if (files.length === 0) throw new DatasetError(`tar shards ${String(source)}: no .tar files`);
  const rest = options as TarFlowOptions & FlowOptions;
  const buffer = streamedOptions(rest, 'tar shards');
  const { names, classes } = await indexTars(files);
  const labelled = classes.some((c) => c.some((v) => v !== null));
  const labels: number[] = [];
  for (const [s, cs] of classes.entries()) {
    for (const [r, text] of cs.entries()) {
      if (!labelled) {
        labels.push(-1);
        continue;
      }
      const n = text === null ? Number.NaN : Number(text);
      if (!Number.isInteger(n) || n < 0)
        throw new DatasetError(
          `tar ${files[s]}: sample ${names[s]![r]} has ${text === null ? 'no .cls entry' : `class '${text}' in its .cls, not a class index`}`,
        );
      labels.push(n);
    }
  }
  const max = labels.reduce((a, b) => Math.max(a, b), -1);
  const classNames = options.classNames ?? Array.from({ length: max + 1 }, (_, i) => String(i));
  if (!Array.isArray(classNames) || classNames.length <= max)
    throw invalidOption('classNames', `at least ${max + 1} names (the largest .cls is ${max})`, options.classNames);
  const root = dirname(files[0]!);
  // The names each tar held when indexed, by the path the reader opens it at.
  const indexed = new Map(files.map((f, s) => [f, names[s]!]));
  const mine = shardFilter(options.shard, files.length, `the ${files.length} tar shards`);
  const shards = files.map((_, s) => s).filter(mine);
  const keep = shards.flatMap((s) => names[s]!.map((_, r) => ({ s, r })));
  if (keep.length === 0) throw new DatasetError(`tar shards ${String(source)} hold no samples`);
  const offsets = [0];
  for (const n of names) offsets.push(offsets.at(-1)! + n.length);
  const pack: PackSource = {
    dir: '/',
    files: files.map((f) => f.slice(1)),
    rows: names.map((n) => n.length),
    shard: Uint32Array.from(keep, ({ s }) => s),
    row: Uint32Array.from(keep, ({ r }) => r),
    buffer,
    parse: (file, bytes) => tarRows(file, bytes, indexed.get(file)!),
  };
  const listing: Manifest = {
    root,
    classNames: labelled ? classNames : [],
    classIndices: labelled ? Object.fromEntries(classNames.map((c, i) => [c, i])) : {},
    paths: keep.map(({ s, r }) => `${relative(root, files[s]!)}/${names[s]![r]!}`),
    labels: Int32Array.from(keep, ({ s, r }) => labels[offsets[s]! + r]!),
  };
  const { shard: _shard, shuffleBuffer: _b, classNames: _c, ...flowOptions } = rest;
  return new ImageFlow({ manifest: listing, pack }, { ...(labelled ? {} : { classMode: 'none' as const }), ...flowOptions });
}

/** Whether `path` names WebDataset tars: a pattern or file ending in .tar, or a directory holding .tar files and no folders. */
async function isTarSource(path: string): Promise<boolean> {
  if (path.endsWith('.tar')) return true;
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  return entries.some((e) => e.isFile() && e.name.endsWith('.tar')) && !entries.some((e) => e.isDirectory());
}

/**
 * A flow over `path`: WebDataset tars (a `.tar` pattern, or a directory of tars and no folders), a
 * pack when it holds one (its pack.json), else a directory of class folders.
 * A pack keeps no pixel cache: `cache` and `cacheBudget` are dropped for one, and its cachePlan says so.
 *
 * @example
 * const flow = await flowFromData(process.argv[2], { targetSize: [224, 224] });
 */
export async function flowFromData(path: string, options: FlowOptions & Pick<PackFlowOptions, 'shuffleBuffer'> = {}): Promise<ImageFlow> {
  if (typeof path !== 'string' || path.length === 0) throw invalidOption('data', 'a directory or pack path', path);
  if (await isTarSource(path)) {
    const { cache, cacheBudget: _budget, cacheFormat: _f, extensions: _e, followLinks: _l, classes, validationSplit, subset: _s, ...rest } = options;
    if (validationSplit !== undefined) throw invalidOption('validationSplit', 'unset for tar shards (keep validation in tars of its own)', validationSplit);
    const flow = await flowFromTar(path, { ...rest, ...(classes ? { classNames: classes } : {}) });
    if (cache !== undefined) flow.cachePlan = { state: 'pack', path: resolve(path) };
    return flow;
  }
  if (!(await isPack(path))) {
    const { shuffleBuffer: _b, ...rest } = options;
    return flowFromDirectory(path, rest);
  }
  const { cache, cacheBudget: _budget, cacheFormat: _f, extensions: _e, followLinks: _l, ...rest } = options;
  const flow = await flowFromPack(path, rest);
  if (cache !== undefined) flow.cachePlan = { state: 'pack', path: resolve(path) };
  return flow;
}
