/**
 * The only module in featherstack that loads `@tensorflow/tfjs-node`.
 *
 * TensorFlow reads its thread-pool sizes (`TF_NUM_INTRAOP_THREADS`, `TF_NUM_INTEROP_THREADS`) and
 * log level once, when the native library loads, so every setting is applied here, before the
 * first `require`, and later calls with different settings are refused rather than ignored.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { NativeTensorFlowError, TensorFlowOptionError } from './errors.js';
import { installNativeGradients } from './gradients.js';
import { requireAddon } from './graph/addon.js';
import type { Tf } from './tf.js';
import { MOMENTUM, type OptimizerKind } from './optimizers.js';

export interface TensorFlowOptions {
  /** Threads one op may use (TF_NUM_INTRAOP_THREADS). Default: all cores. */
  intraOpThreads?: number;
  /** Ops that may run at once (TF_NUM_INTEROP_THREADS). Default: 2, or 1 on one core. */
  interOpThreads?: number;
  /** TensorFlow's C++ log level, 0 (all) … 3 (errors only). Default: 3, or TF_CPP_MIN_LOG_LEVEL. */
  logLevel?: 0 | 1 | 2 | 3;
  /**
   * TensorFlow's CPU allocator: 'bfc' (default; TF_CPU_ALLOCATOR_USE_BFC) pools tensor memory, where
   * 'system' (glibc malloc) hands large buffers back to the kernel and faults them in again on
   * every step. An explicit TF_CPU_ALLOCATOR_USE_BFC in the environment wins over the default.
   */
  allocator?: 'bfc' | 'system';
  /** The BFC pool's limit in MiB. Default: 3/4 of this machine's memory, or TF_CPU_BFC_MEM_LIMIT_IN_MB. */
  memoryLimitMB?: number;
  /**
   * TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS). Default: on, or the environment's value.
   * Measured on MobileNetV2 at 224² (2 cores): 194 images/s float32 against 132 with Eigen's
   * kernels, and mixed-bfloat16 only pays with oneDNN (22 images/s without). TF 2.21's oneDNN dies
   * of SIGFPE setting up some 1×1 convolutions on AVX-512 CPUs (ResNet50's, in Keras's own predict
   * too); the graph compiler writes inference's 1×1 convolutions as matrix products, which keeps
   * them off that primitive, and a crash that still happens is named on stderr.
   */
  onednn?: boolean;
}

export interface TensorFlowReport {
  backend: string;
  tensorflowVersion: string;
  tfjsVersion: string;
  provisionedFrom: 'download' | 'wheel';
  threads: { intraOp: number; interOp: number };
  /** The CPU allocator TensorFlow was loaded with, and the BFC pool's limit. */
  allocator: { kind: 'bfc' | 'system'; memoryLimitMB: number | null };
  /** Whether oneDNN's kernels were on (TF_ENABLE_ONEDNN_OPTS). */
  onednn: boolean;
}

const require = createRequire(import.meta.url);
let loaded: { tf: Tf; settings: Required<TensorFlowOptions> } | undefined;

function threadsOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TensorFlowOptionError(`options.${name} must be a positive integer, received ${JSON.stringify(value)}`);
  }
  return value;
}

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new TensorFlowOptionError(`environment variable ${name} must be a non-negative integer, received ${JSON.stringify(raw)}`);
  }
  return value === 0 ? undefined : value;
}

function envAllocator(): 'bfc' | 'system' | undefined {
  const raw = process.env.TF_CPU_ALLOCATOR_USE_BFC;
  if (raw === undefined || raw === '') return undefined;
  if (['1', 'true'].includes(raw.toLowerCase())) return 'bfc';
  if (['0', 'false'].includes(raw.toLowerCase())) return 'system';
  throw new TensorFlowOptionError(`environment variable TF_CPU_ALLOCATOR_USE_BFC must be true or false, received ${JSON.stringify(raw)}`);
}

function envOnednn(): boolean | undefined {
  const raw = process.env.TF_ENABLE_ONEDNN_OPTS;
  if (raw === undefined || raw === '') return undefined;
  if (['1', 'true'].includes(raw.toLowerCase())) return true;
  if (['0', 'false'].includes(raw.toLowerCase())) return false;
  throw new TensorFlowOptionError(`environment variable TF_ENABLE_ONEDNN_OPTS must be 0 or 1, received ${JSON.stringify(raw)}`);
}

function resolveSettings(options: TensorFlowOptions): Required<TensorFlowOptions> {
  const cores = availableParallelism();
  const logLevel = options.logLevel ?? (envInt('TF_CPP_MIN_LOG_LEVEL') as 0 | 1 | 2 | 3 | undefined) ?? 3;
  if (![0, 1, 2, 3].includes(logLevel)) {
    throw new TensorFlowOptionError(`options.logLevel must be 0, 1, 2 or 3, received ${JSON.stringify(logLevel)}`);
  }
  return {
    intraOpThreads: threadsOption('intraOpThreads', options.intraOpThreads, envInt('TF_NUM_INTRAOP_THREADS') ?? cores),
    interOpThreads: threadsOption('interOpThreads', options.interOpThreads, envInt('TF_NUM_INTEROP_THREADS') ?? Math.min(2, cores)),
    logLevel,
    allocator: (() => {
      const value = options.allocator ?? envAllocator() ?? 'bfc';
      if (value !== 'bfc' && value !== 'system')
        throw new TensorFlowOptionError(`options.allocator must be 'bfc' or 'system', received ${JSON.stringify(value)}`);
      return value;
    })(),
    memoryLimitMB: threadsOption('memoryLimitMB', options.memoryLimitMB, envInt('TF_CPU_BFC_MEM_LIMIT_IN_MB') ?? Math.floor((totalmem() / 2 ** 20) * 0.75)),
    onednn: (() => {
      const value = options.onednn ?? envOnednn() ?? true;
      if (typeof value !== 'boolean') throw new TensorFlowOptionError(`options.onednn must be true or false, received ${JSON.stringify(value)}`);
      return value;
    })(),
  };
}

/** Throws unless `backend` is tfjs-node's native TensorFlow backend. @internal */
export function assertNativeBackend(backend: string): void {
  if (backend !== 'tensorflow') {
    throw new NativeTensorFlowError(
      `the active tfjs backend is '${backend}', not native 'tensorflow'; featherstack never trains on the JS backends ` +
        '(about 1000x slower for CNNs). Run `npm run build` (it provisions native TensorFlow) and check `featherstack doctor`.',
    );
  }
}

function tfjsNodeDir(): string {
  return dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
}

/**
 * Loads native TensorFlow once per process (or worker thread) and returns the tfjs-node namespace.
 *
 * @example
 * const tf = loadTensorFlow({ intraOpThreads: 2 });
 * const y = tf.tensor([1, 2, 3]).square();
 */
export function loadTensorFlow(options: TensorFlowOptions = {}): Tf {
  const settings = resolveSettings(options);
  if (loaded) {
    const same = (Object.keys(options) as (keyof TensorFlowOptions)[]).every((k) => loaded?.settings[k] === settings[k]);
    if (!same) {
      throw new TensorFlowOptionError(
        `TensorFlow is already loaded with ${JSON.stringify(loaded.settings)}; its thread counts and log level are read once, ` +
          `at load, so ${JSON.stringify(options)} cannot take effect. Pass the options to the first loadTensorFlow() call.`,
      );
    }
    return loaded.tf;
  }
  const environment: Record<string, string> = {
    TF_NUM_INTRAOP_THREADS: String(settings.intraOpThreads),
    TF_NUM_INTEROP_THREADS: String(settings.interOpThreads),
    TF_CPP_MIN_LOG_LEVEL: String(settings.logLevel),
    // Pooled tensor memory: measured at 224² (seed CNN, batch 32) glibc's allocator spent about half
    // of training's CPU time in the kernel (page faults of buffers returned and re-requested every
    // step); TensorFlow's BFC allocator keeps them (see README, Performance).
    TF_CPU_ALLOCATOR_USE_BFC: settings.allocator === 'bfc' ? 'true' : 'false',
    TF_CPU_BFC_MEM_LIMIT_IN_MB: String(settings.memoryLimitMB),
    // Every session (trainer replica) gets an intra-op pool of its own size instead of sharing the
    // process's first pool: replicas must not queue behind each other's ops.
    TF_OVERRIDE_GLOBAL_THREADPOOL: process.env.TF_OVERRIDE_GLOBAL_THREADPOOL ?? '1',
    // See TensorFlowOptions.onednn.
    TF_ENABLE_ONEDNN_OPTS: settings.onednn ? '1' : '0',
  };
  for (const [name, value] of Object.entries(environment)) {
    process.env[name] = value;
    // A worker thread's process.env is its own copy; libtensorflow reads the process's.
    if (!isMainThread) requireAddon().setEnv(name, value);
  }
  let tf: Tf;
  try {
    tf = require('@tensorflow/tfjs-node') as Tf;
  } catch (error) {
    throw new NativeTensorFlowError(
      `@tensorflow/tfjs-node could not load its native binding: ${(error as Error).message.split('\n')[0]}. ` +
        'Provision native TensorFlow: `npx featherstack-provision` where featherstack is installed from npm, `npm run build` in its repository.',
    );
  }
  assertNativeBackend(tf.getBackend());
  // A kernel's arithmetic fault must not pass as a silent exit: the addon names it on stderr.
  requireAddon().installCrashReport(
    settings.onednn
      ? ' inside a TensorFlow kernel, with oneDNN on (TF_ENABLE_ONEDNN_OPTS=1); oneDNN 1x1-convolution setup is known to divide by zero on some CPUs: run with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0, or loadTensorFlow({ onednn: false }))'
      : ' inside a TensorFlow kernel (oneDNN off); please report the model and the input size',
  );
  installNativeGradients(tf);
  loaded = { tf, settings };
  return tf;
}

/**
 * Describes the loaded TensorFlow: backend, library version, where it came from and its threads.
 *
 * @example
 * console.log(tensorflowReport()); // { backend: 'tensorflow', tensorflowVersion: '2.21.0', … }
 */
export function tensorflowReport(options: TensorFlowOptions = {}): TensorFlowReport {
  const tf = loadTensorFlow(options);
  const settings = loaded!.settings;
  const backend = tf.backend() as unknown as { binding?: { TF_Version?: string } };
  let provisionedFrom: 'download' | 'wheel' = 'download';
  try {
    const marker = JSON.parse(readFileSync(join(tfjsNodeDir(), 'featherstack-provision.json'), 'utf8')) as {
      provisionedFrom?: string;
    };
    if (marker.provisionedFrom === 'wheel') provisionedFrom = 'wheel';
  } catch {
    // No marker: tfjs-node was installed by its own script, which downloads libtensorflow.
  }
  return {
    backend: tf.getBackend(),
    tensorflowVersion: backend.binding?.TF_Version ?? 'unknown',
    tfjsVersion: tf.version['tfjs-node'] ?? 'unknown',
    provisionedFrom,
    threads: { intraOp: settings.intraOpThreads, interOp: settings.interOpThreads },
    allocator: { kind: settings.allocator, memoryLimitMB: settings.allocator === 'bfc' ? settings.memoryLimitMB : null },
    onednn: settings.onednn,
  };
}

/** tfjs's optimizer for `kind` at learning rate `lr`: the eager engines' one factory (base and head). */
export function eagerOptimizer(tf: Tf, kind: OptimizerKind, lr: number) {
  switch (kind) {
    case 'adam':
      return tf.train.adam(lr);
    case 'sgd':
      return tf.train.sgd(lr);
    case 'momentum':
      return tf.train.momentum(lr, MOMENTUM);
    case 'rmsprop':
      return tf.train.rmsprop(lr);
  }
}

/**
 * Sets a tfjs optimizer's learning rate for its next steps (a schedule, reduce-on-plateau): SGD and
 * momentum hold it as a kept scalar that setLearningRate replaces; Adam and RMSProp read the field
 * at every step.
 */
export function setOptimizerLearningRate(optimizer: object, lr: number): void {
  const o = optimizer as { setLearningRate?: (lr: number) => void; learningRate?: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else if (typeof o.learningRate === 'number') o.learningRate = lr;
  else throw new Error(`cannot set the learning rate of a ${optimizer.constructor.name}`);
}
