/**
 * Reads the HDF5 files Keras writes (a `.keras` archive's model.weights.h5, a legacy `.h5`) with
 * h5wasm, the HDF5 C library compiled to WebAssembly.
 *
 * h5wasm's Node build opens host paths directly (Emscripten NODERAWFS), so a weights file inside a
 * zip archive is written to a private temporary directory first and removed when the reader closes.
 * HDF5's own diagnostics are turned into exceptions (h5wasm would otherwise print them and hand
 * back a file id of -1), and the last of them, the cause, goes into the error.
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelFileError } from '@featherstack/tensorflow';

type H5wasm = typeof import('h5wasm/node');
type H5File = InstanceType<H5wasm['File']>;

/** One dataset: its shape at once, its values (as float32) when read. @internal */
export interface Hdf5Dataset {
  path: string;
  shape: number[];
  dtype: string;
  read(): Float32Array;
}

/** What the importer reads from an HDF5 file. @internal */
export interface Hdf5Reader {
  /** The file as the user named it, for errors: `x.keras (model.weights.h5)`. */
  readonly file: string;
  isGroup(path: string): boolean;
  keys(path: string): string[];
  /** An attribute's value (string, list of strings, number…), or undefined when absent. */
  attribute(path: string, name: string): unknown;
  dataset(path: string): Hdf5Dataset;
  close(): Promise<void>;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
let loading: Promise<H5wasm> | undefined;

/** Loads the wasm module once per process, and only when an HDF5 file is read or written. @internal */
export function h5wasm(): Promise<H5wasm> {
  loading ??= import('h5wasm/node').then(async (module) => {
    const wasm = await module.ready;
    wasm.activate_throwing_error_handler();
    return module;
  });
  return loading;
}

/** Does `head` start with the HDF5 signature? (Keras and h5py never write a user block.) @internal */
export function isHdf5(head: Uint8Array): boolean {
  return SIGNATURE.every((b, i) => head[i] === b);
}

/** HDF5's error stack ends with the cause: "truncated file: eof = 46872, … stored_eof = 93744". */
function cause(error: unknown): string {
  const text = String((error as Error)?.message ?? error);
  const lines = [...text.matchAll(/ in [\w.]+\(\): (.+)$/gm)].map((m) => m[1]);
  return lines.at(-1) ?? text.split('\n')[0] ?? 'unknown HDF5 error';
}

/**
 * Opens an HDF5 file on disk; `display` names it in errors.
 *
 * @example
 * const h5 = await openHdf5('model.h5', 'model.h5');
 * try { console.log(h5.keys('/')); } finally { await h5.close(); }
 * @internal
 */
export async function openHdf5(path: string, display: string, cleanup?: () => Promise<void>): Promise<Hdf5Reader> {
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new ModelFileError(display, `cannot be read (${error.code ?? error.message})`);
  });
  const head = new Uint8Array(8);
  await handle.read(head, 0, 8, 0).finally(() => handle.close());
  if (!isHdf5(head)) {
    await cleanup?.();
    throw new ModelFileError(display, 'is not an HDF5 file (no HDF5 signature at its start)');
  }
  const lib = await h5wasm();
  let file: H5File;
  try {
    file = new lib.File(path, 'r');
  } catch (error) {
    await cleanup?.();
    throw new ModelFileError(display, `cannot be opened as HDF5: ${cause(error)}`);
  }
  return reader(lib, file, display, cleanup);
}

/** Opens HDF5 bytes (a zip entry) through a private temporary file. @internal */
export async function openHdf5Bytes(bytes: Uint8Array, display: string): Promise<Hdf5Reader> {
  const dir = await mkdtemp(join(tmpdir(), 'featherstack-h5-'));
  const path = join(dir, 'weights.h5');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    await writeFile(path, bytes);
  } catch (error) {
    await cleanup();
    throw new ModelFileError(display, `cannot be unpacked to ${dir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return openHdf5(path, display, cleanup);
}

function reader(lib: H5wasm, file: H5File, display: string, cleanup?: () => Promise<void>): Hdf5Reader {
  const get = (path: string) => {
    try {
      return file.get(path);
    } catch (error) {
      throw new ModelFileError(display, `cannot be read at ${path}: ${cause(error)}`);
    }
  };
  return {
    file: display,
    isGroup: (path) => get(path) instanceof lib.Group,
    keys: (path) => {
      const node = get(path);
      return node instanceof lib.Group ? node.keys() : [];
    },
    attribute: (path, name) => {
      const node = get(path);
      const attrs = node === null ? undefined : (node as { attrs?: Record<string, { value: unknown }> }).attrs;
      return attrs?.[name]?.value ?? undefined;
    },
    dataset: (path) => {
      const node = get(path);
      if (!(node instanceof lib.Dataset)) throw new ModelFileError(display, `has no dataset ${path}`);
      const shape = node.shape ?? [];
      const dtype = String(node.dtype);
      return { path, shape, dtype, read: () => float32(display, node, path, shape) };
    },
    close: async () => {
      file.close();
      await cleanup?.();
    },
  };
}

/** A dataset's values as float32, refusing ones that are not numbers of the stated shape. */
function float32(display: string, node: InstanceType<H5wasm['Dataset']>, path: string, shape: number[]): Float32Array {
  let raw: unknown;
  try {
    raw = node.value;
  } catch (error) {
    throw new ModelFileError(display, `cannot be read at ${path}: ${cause(error)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  let values: Float32Array | undefined;
  if (raw instanceof Float32Array) values = raw;
  else if (raw instanceof Float64Array || raw instanceof Int32Array) values = Float32Array.from(raw);
  else if (raw instanceof BigInt64Array) values = Float32Array.from(raw, Number);
  else if (typeof raw === 'number') values = Float32Array.of(raw);
  if (values === undefined || values.length !== size) {
    throw new ModelFileError(display, `holds ${path} as ${String(node.dtype)} ${JSON.stringify(shape)}, which is not numeric data of that shape`);
  }
  return values;
}
