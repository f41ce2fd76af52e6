/**
 * Keras-written goldens for the model-import tests: keras.applications backbones and a few small
 * models, saved by Keras 3 as `.keras` and legacy `.h5`, with Keras's own predictions on a fixed
 * batch (benchmarks/golden/keras_backbones.py writes them; nothing large is committed).
 *
 * They are generated once per machine into ~/.cache/featherstack/goldens/backbones-<version>/,
 * <version> being the script's VERSION, so a change to the script regenerates them. Generation
 * needs python3 with TensorFlow; without it the tests fail (never skip) and say how to install it.
 *
 * @example
 * const { dir, manifest } = await backboneGoldens();
 * const x = readF32(join(dir, manifest.input.file), manifest.input.shape);
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The script that writes the goldens. */
export const GOLDEN_SCRIPT = fileURLToPath(new URL('../../../benchmarks/golden/keras_backbones.py', import.meta.url));
/** Generation runs every model's predict once; a slow 2-core machine takes 2 minutes, so 15 is generous. */
export const GOLDEN_TIMEOUT_MS = 15 * 60_000;

export interface GoldenModel {
  name: string;
  files: { keras: string; h5: string | null; output: string; features?: string };
  outputShape: number[];
  outputStd: number;
  outputLayer: string;
  layers: number;
  layerClasses: string[];
  featuresLayer?: string;
  featuresShape?: number[];
  featuresStd?: number;
}

export interface BackboneManifest {
  version: number;
  size: number;
  input: { file: string; shape: number[]; dtype: 'float32' };
  models: GoldenModel[];
  refused: { name: string; file: string; layer: string; className: string }[];
  keras: string;
  tensorflow: string;
  environment: Record<string, string>;
}

export interface BackboneGoldens {
  dir: string;
  manifest: BackboneManifest;
}

/** The script's VERSION: the one home of the goldens' version. */
export function goldenVersion(): number {
  const match = /^VERSION = (\d+)$/m.exec(readFileSync(GOLDEN_SCRIPT, 'utf8'));
  if (match === null) throw new Error(`${GOLDEN_SCRIPT} has no 'VERSION = <n>' line`);
  return Number(match[1]);
}

/** Where the goldens of `version` live. */
export function goldenDir(version = goldenVersion()): string {
  return join(homedir(), '.cache', 'featherstack', 'goldens', `backbones-${version}`);
}

async function requireKeras(): Promise<void> {
  try {
    await run('python3', ['-c', 'import tensorflow, keras, h5py'], { timeout: 180_000, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
  } catch (error) {
    const reason = String((error as { stderr?: string }).stderr || (error as Error).message)
      .trim()
      .split('\n')
      .at(-1);
    throw new Error(
      `the Keras import tests compare against goldens that Keras itself writes (${GOLDEN_SCRIPT}), which needs python3 with TensorFlow ` +
        `and Keras 3: pip install tensorflow-cpu (python3 -c 'import tensorflow, keras, h5py' failed: ${reason})`,
    );
  }
}

/** Writes the goldens into a private directory, then renames it into place: a half-written one is never seen. */
async function generate(dir: string): Promise<void> {
  await requireKeras();
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  try {
    // oneDNN raises SIGFPE in some kernels on the CPUs this runs on; the script sets this too.
    const env = { ...process.env, TF_ENABLE_ONEDNN_OPTS: '0', TF_CPP_MIN_LOG_LEVEL: '3' };
    await run('python3', [GOLDEN_SCRIPT, '--out', partial], { timeout: GOLDEN_TIMEOUT_MS, env, maxBuffer: 64 * 2 ** 20 });
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    const stderr = String((error as { stderr?: string }).stderr ?? '')
      .trim()
      .split('\n')
      .slice(-8)
      .join('\n');
    throw new Error(`${GOLDEN_SCRIPT} --out ${partial} failed (${(error as Error).message.split('\n')[0]}):\n${stderr}`);
  }
  try {
    await rename(partial, dir);
  } catch (error) {
    // Another test process finished first: keep its goldens.
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(join(dir, 'manifest.json'))) throw error;
  }
}

/** The manifest, checked like any input: right version, plain file names, shapes of positive integers. */
function parseManifest(text: string, file: string, version: number): BackboneManifest {
  const manifest = JSON.parse(text) as BackboneManifest;
  const bad = (what: string) => new Error(`${file}: ${what}; delete ${dirname(file)} to regenerate it`);
  if (manifest.version !== version) throw bad(`version ${manifest.version} is not the script's ${version}`);
  const plain = (name: unknown) => typeof name === 'string' && name === basename(name) && !name.startsWith('.');
  const shape = (s: unknown) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d > 0);
  if (!plain(manifest.input?.file) || !shape(manifest.input.shape)) throw bad('input is not a file name with a shape');
  for (const m of manifest.models ?? []) {
    const files = [m.files?.keras, m.files?.output, ...(m.files?.h5 ? [m.files.h5] : []), ...(m.files?.features ? [m.files.features] : [])];
    if (!files.every(plain) || !shape(m.outputShape)) throw bad(`model ${JSON.stringify(m.name)} has a bad file name or shape`);
  }
  return manifest;
}

let pending: Promise<BackboneGoldens> | undefined;

/**
 * The goldens' directory and manifest, written first if this machine has none (once per process).
 * Rejects, saying `pip install tensorflow-cpu`, where python3 or TensorFlow is missing.
 */
export function backboneGoldens(): Promise<BackboneGoldens> {
  pending ??= (async () => {
    const version = goldenVersion();
    const dir = goldenDir(version);
    const manifestFile = join(dir, 'manifest.json');
    if (!existsSync(manifestFile)) await generate(dir);
    return { dir, manifest: parseManifest(await readFile(manifestFile, 'utf8'), manifestFile, version) };
  })();
  return pending;
}

/** A float32 little-endian file of the given shape. */
export function readF32(file: string, shape: number[]): Float32Array {
  const bytes = readFileSync(file);
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== size * 4) throw new Error(`${file} holds ${bytes.length} bytes, not the ${size * 4} of float32 ${JSON.stringify(shape)}`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

export interface Difference {
  /** max |actual - expected| */
  maxAbs: number;
  /** max |expected|, the scale maxAbs is judged against */
  scale: number;
  /** maxAbs / max(scale, 1e-12) */
  relative: number;
}

/** How far `actual` is from `expected`, element by element. */
export function difference(actual: ArrayLike<number>, expected: ArrayLike<number>): Difference {
  if (actual.length !== expected.length) throw new Error(`compared ${actual.length} values with ${expected.length}`);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbs, d);
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return { maxAbs, scale, relative: maxAbs / Math.max(scale, 1e-12) };
}
