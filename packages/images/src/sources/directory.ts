/**
 * flow_from_directory's listing, with Keras 3's exact order and split semantics
 * (keras/src/legacy/preprocessing/image.py: DirectoryIterator, _iter_valid_files,
 * _list_valid_filenames_in_directory):
 * - classes are the subdirectories in code-point order, unless given;
 * - within a class, directories are visited in code-point order of their full path (Keras sorts
 *   os.walk's tuples by root), and files within a directory in code-point order;
 * - a file is accepted when its lower-cased name ends with an accepted extension;
 * - validationSplit takes, per class, files [0, floor(split·n)) for 'validation' and the rest for
 *   'training'.
 */
import type { Dirent } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DatasetError, invalidOption } from '../errors.js';

export const KERAS_EXTENSIONS = ['png', 'jpg', 'jpeg', 'bmp', 'ppm', 'tif', 'tiff'] as const;
export const OPTIONAL_EXTENSIONS = ['webp', 'gif'] as const;

/** Compares strings by Unicode code point, as Python's `sorted` does (JS's default is UTF-16 units). */
export function codePointCompare(a: string, b: string): number {
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}

export interface DirectoryListingOptions {
  /** Class subdirectory names in label order. Default: every subdirectory, code-point order. */
  classes?: string[];
  /** Accepted extensions without the dot, case-insensitive. Default: Keras's list. */
  extensions?: readonly string[];
  followLinks?: boolean;
  validationSplit?: number;
  subset?: 'training' | 'validation';
}

/** The samples of a dataset: paths relative to `root`, and class indices. */
export interface Manifest {
  root: string;
  classNames: string[];
  classIndices: Record<string, number>;
  paths: string[];
  labels: Int32Array;
}

async function isDirectory(path: string, entry: Dirent, followLinks: boolean): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!followLinks || !entry.isSymbolicLink()) return false;
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false; // a dangling link is neither a directory nor an image
  }
}

/** Keras (os.walk) lists symlinked files whatever followlinks says; followlinks only affects directories. */
async function isFile(path: string, entry: Dirent): Promise<boolean> {
  if (entry.isFile()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Every accepted file under `dir`, in Keras's order. Directory symlinks are followed only with
 * `followLinks`, and a directory whose real path was already visited is skipped, so a link loop
 * terminates instead of recursing forever.
 */
export async function listClassFiles(dir: string, extensions: readonly string[], followLinks: boolean): Promise<string[]> {
  const suffixes = extensions.map((e) => `.${e.toLowerCase()}`);
  const accepted = (name: string) => {
    const lower = name.toLowerCase();
    return suffixes.some((s) => lower.endsWith(s));
  };
  // Keras sorts os.walk's (root, dirs, files) tuples by root: gather every directory first.
  const dirs: { path: string; files: string[] }[] = [];
  const seen = new Set<string>();
  const walk = async (path: string): Promise<void> => {
    const real = await realpath(path);
    if (seen.has(real)) return;
    seen.add(real);
    const files: string[] = [];
    const subdirs: string[] = [];
    // Streamed: a directory of a million files holds only the accepted names, never every entry.
    for await (const entry of await opendir(path, { bufferSize: 256 })) {
      const full = join(path, entry.name);
      if (await isDirectory(full, entry, followLinks)) subdirs.push(full);
      else if (accepted(entry.name) && (await isFile(full, entry))) files.push(entry.name);
    }
    dirs.push({ path, files: files.sort(codePointCompare) });
    for (const sub of subdirs) await walk(sub);
  };
  await walk(dir);
  dirs.sort((a, b) => codePointCompare(a.path, b.path));
  return dirs.flatMap((d) => d.files.map((f) => join(d.path, f)));
}

/** Lists a flow_from_directory dataset. Rejects with a message naming the directory or option. */
export async function listDirectory(root: string, options: DirectoryListingOptions = {}): Promise<Manifest> {
  const split = options.validationSplit ?? 0;
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) {
    throw invalidOption('validationSplit', 'a number in [0, 1)', split);
  }
  if (options.subset !== undefined && options.subset !== 'training' && options.subset !== 'validation') {
    throw invalidOption('subset', "'training' or 'validation'", options.subset);
  }
  if (options.subset !== undefined && split === 0) {
    throw invalidOption('subset', 'used together with a validationSplit above 0', options.subset);
  }
  let rootStat: Awaited<ReturnType<typeof stat>>;
  try {
    rootStat = await stat(root);
  } catch {
    throw new DatasetError(`dataset directory ${root} does not exist`);
  }
  if (!rootStat.isDirectory()) throw new DatasetError(`dataset path ${root} is not a directory`);
  const followLinks = options.followLinks ?? false;
  let classNames = options.classes;
  if (classNames === undefined) {
    const names: string[] = [];
    for await (const entry of await opendir(root)) if (await isDirectory(join(root, entry.name), entry, true)) names.push(entry.name);
    classNames = names.sort(codePointCompare);
  } else if (!Array.isArray(classNames) || classNames.some((c) => typeof c !== 'string' || c.length === 0)) {
    throw invalidOption('classes', 'an array of subdirectory names', classNames);
  }
  if (classNames.length === 0) {
    throw new DatasetError(`dataset directory ${root} has no class subdirectories (expected ${root}${sep}<class>${sep}<image>)`);
  }
  const extensions = options.extensions ?? KERAS_EXTENSIONS;
  const paths: string[] = [];
  const labels: number[] = [];
  for (const [index, name] of classNames.entries()) {
    const dir = join(root, name);
    let files: string[];
    try {
      files = await listClassFiles(dir, extensions, followLinks);
    } catch (error) {
      throw new DatasetError(`cannot list class directory ${dir}: ${(error as Error).message}`);
    }
    let [start, stop] = [0, files.length];
    if (options.subset === 'validation') stop = Math.floor(split * files.length);
    else if (options.subset === 'training') start = Math.floor(split * files.length);
    for (let i = start; i < stop; i++) {
      paths.push(relative(root, files[i]!));
      labels.push(index);
    }
  }
  const classIndices: Record<string, number> = {};
  for (const [i, c] of classNames.entries()) classIndices[c] = i;
  return { root, classNames, classIndices, paths, labels: Int32Array.from(labels) };
}
