/**
 * flow_from_directory's listing, with Keras 3's exact order and split semantics
 * (keras/src/legacy/preprocessing/image.py: DirectoryIterator, _iter_valid_files,
 * _list_valid_filenames_in_directory):
 * - classes are the subdirectories in code-point order, unless given;
 * - within a class, directories are visited in code-point order of their full path (Keras sorts
 *   os.walk's tuples by root), and files within a directory in code-point order;
 * - a file is accepted when its lower-cased name ends with an accepted extension (Keras's
 *   `str.endswith`, without a dot);
 * - validationSplit takes, per class, files [0, floor(split·n)) for 'validation' and the rest for
 *   'training'.
 */
import type { Dirent } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DatasetError, invalidOption } from '../errors.js';

export const KERAS_EXTENSIONS = ['png', 'jpg', 'jpeg', 'bmp', 'ppm', 'tif', 'tiff'] as const;

/**
 * Compares strings by Unicode code point, as Python's `sorted` does. JS's default compares UTF-16
 * units, which differs only where a surrogate (half of a code point past U+FFFF) meets a unit in
 * U+E000–U+FFFF: there the surrogate's code point is the greater one.
 */
export function codePointCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
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

/**
 * How os.walk sees an entry: a directory (following symlinks, as `entry.is_dir()` does), which it
 * descends into unless it is a symlink and links are not followed; anything else is a file, a
 * dangling symlink included (Keras lists it, and loading it fails by name). FIFOs, sockets and
 * devices are left out: reading one would block a decode worker forever.
 */
async function classify(path: string, entry: Dirent): Promise<'dir' | 'link-dir' | 'file' | 'other'> {
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    const target = await stat(path);
    return target.isDirectory() ? 'link-dir' : target.isFile() ? 'file' : 'other';
  } catch {
    return 'file';
  }
}

/**
 * Every accepted file under `dir`, in Keras's order: a name is accepted when its lower-cased form
 * ends with an extension, as Keras's `str.endswith` test does (so without a dot: `xpng` counts).
 * Directory symlinks are followed only with `followLinks`. A directory whose real path is one of
 * its own ancestors is not entered again, so a link loop ends; os.walk would go round it until
 * the kernel's 40-link limit and list the files once per lap (one of the two documented differences; the other: FIFOs, sockets and devices are left out).
 */
export async function listClassFiles(dir: string, extensions: readonly string[], followLinks: boolean): Promise<string[]> {
  return (await classFileGroups(dir, extensions, followLinks)).flatMap((d) => d.files.map((f) => join(d.path, f)));
}

/** listClassFiles's files grouped by directory (directories and names in Keras's order), not yet joined. */
async function classFileGroups(dir: string, extensions: readonly string[], followLinks: boolean): Promise<{ path: string; files: string[] }[]> {
  const suffixes = extensions.map((e) => e.toLowerCase());
  const accepted = (name: string) => {
    const lower = name.toLowerCase();
    return suffixes.some((s) => lower.endsWith(s));
  };
  // Keras sorts os.walk's (root, dirs, files) tuples by root: gather every directory first.
  const dirs: { path: string; files: string[] }[] = [];
  const walk = async (path: string, ancestors: readonly string[]): Promise<void> => {
    const real = await realpath(path);
    if (ancestors.includes(real)) return;
    const files: string[] = [];
    const subdirs: string[] = [];
    // Streamed: a directory of a million files holds only the accepted names, never every entry.
    for await (const entry of await opendir(path, { bufferSize: 256 })) {
      // A regular file needs no path of its own (most entries): only the others are classified.
      if (entry.isFile()) {
        if (accepted(entry.name)) files.push(entry.name);
        continue;
      }
      const full = join(path, entry.name);
      const kind = await classify(full, entry);
      if (kind === 'dir' || (kind === 'link-dir' && followLinks)) subdirs.push(full);
      else if (kind === 'file' && accepted(entry.name)) files.push(entry.name);
    }
    dirs.push({ path, files: files.sort(codePointCompare) });
    const chain = [...ancestors, real];
    for (const sub of subdirs) await walk(sub, chain);
  };
  await walk(dir, []);
  return dirs.sort((a, b) => codePointCompare(a.path, b.path));
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
    for await (const entry of await opendir(root)) {
      const kind = await classify(join(root, entry.name), entry);
      if (kind === 'dir' || kind === 'link-dir') names.push(entry.name);
    }
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
    const files: string[] = [];
    try {
      // Paths relative to the root: one relative() a directory, not one a file.
      for (const group of await classFileGroups(dir, extensions, followLinks)) {
        const prefix = `${relative(root, group.path)}${sep}`;
        for (const f of group.files) files.push(prefix + f);
      }
    } catch (error) {
      throw new DatasetError(`cannot list class directory ${dir}: ${(error as Error).message}`);
    }
    let [start, stop] = [0, files.length];
    if (options.subset === 'validation') stop = Math.floor(split * files.length);
    else if (options.subset === 'training') start = Math.floor(split * files.length);
    for (let i = start; i < stop; i++) {
      paths.push(files[i]!);
      labels.push(index);
    }
  }
  const classIndices: Record<string, number> = {};
  for (const [i, c] of classNames.entries()) classIndices[c] = i;
  return { root, classNames, classIndices, paths, labels: Int32Array.from(labels) };
}
