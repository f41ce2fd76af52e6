/**
 * The run's options, defined once: one schema checks them whether they come from flags, a config
 * file (`--config run.yaml`) or the API (runWorkflow), and one resolver fills the defaults that
 * every stage — the workflow, the stage commands, the trainer service — then shares. Errors name
 * the source (file or flag), the exact key and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { COLOR_MODES, type ColorMode, DEFAULT_SEED, MONITORS } from '@featherstack/common';
import { ENGINE_KINDS, type EngineKind, type EngineOptions, POOLINGS, PRECISIONS, type Pooling, type Precision } from '@featherstack/core';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import {
  type AUGMENT_KEYS,
  type AugmentOptions,
  FILL_MODES,
  isCacheFormat,
  ON_ERROR_MODES,
  type OnError,
  PREPROCESS_MODES,
  type PreprocessMode,
} from '@featherstack/images';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { RunCacheFormat } from './flows.js';

const positive = z.number().int().positive();
const range = z.union([z.number(), z.array(z.number())], { error: 'expected a number or a list of numbers' });

/**
 * ImageDataGenerator-style augmentation (see @featherstack/images): types checked here, with the
 * exact key in the message; value ranges (zoom in [0, 1), …) by the image engine itself.
 */
export const augmentSchema = z
  .object({
    rotationRange: z.number(),
    widthShiftRange: range,
    heightShiftRange: range,
    shearRange: z.number(),
    zoomRange: z.union([z.number(), z.tuple([z.number(), z.number()])], { error: 'expected a number in [0, 1) or [lo, hi]' }),
    channelShiftRange: z.number(),
    brightnessRange: z.tuple([z.number(), z.number()]),
    horizontalFlip: z.boolean(),
    verticalFlip: z.boolean(),
    fillMode: z.enum(FILL_MODES),
    cval: z.number(),
    interpolationOrder: z.union([z.literal(0), z.literal(1)], { error: 'expected 0 (nearest) or 1 (bilinear)' }),
    rescale: z.number(),
    keras: z.boolean(),
    samplewiseCenter: z.boolean(),
    samplewiseStdNormalization: z.boolean(),
    featurewiseCenter: z.boolean(),
    featurewiseStdNormalization: z.boolean(),
    zcaWhitening: z.boolean(),
    zcaEpsilon: z.number(),
    preprocessingFunction: z.string().min(1),
    preprocess: z.enum(PREPROCESS_MODES),
  } satisfies Record<(typeof AUGMENT_KEYS)[number], z.ZodType>)
  .partial()
  .strict();

/**
 * Every run option: its type, its valid values and its help (the `run` flags and their --help are
 * made from this; the defaults are RUN_DEFAULTS). Keys are the flags in camelCase.
 */
export const runConfigSchema = z
  .object({
    data: z.string().min(1).describe('dataset with train/ and val/ class folders'),
    out: z.string().min(1).describe('output directory: features, model, report, checkpoints, pixel cache'),
    imageSize: z
      .union([positive, z.tuple([positive, positive])], { error: 'expected a positive integer N or [height, width]' })
      .describe('target image size: N or HxW (in a config, N or [height, width])'),
    colorMode: z.enum(COLOR_MODES).describe(COLOR_MODES.join(' | ')),
    batchSize: positive.describe('batch size'),
    baseEpochs: positive.describe('base training epochs'),
    headEpochs: positive.describe('head training epochs'),
    workers: positive.describe('image decode workers (default: all cores; at most 4 per core)'),
    tfThreads: positive.describe('TensorFlow intra-op threads per replica (default: the thread plan, see doctor)'),
    replicas: positive.describe('data-parallel trainer replicas, each a TensorFlow session (default: the thread plan, see doctor; at most the core count)'),
    engine: z
      .enum(ENGINE_KINDS)
      .describe('graph (one compiled TensorFlow graph per step, the default where the model compiles) or eager (tfjs ops, one replica)'),
    precision: z
      .enum(PRECISIONS)
      .describe(
        'float32 (default) or mixed-bfloat16 (graph engine: layers compute in bfloat16, weights and optimizer stay float32; about 2× faster on CPUs with AVX512_BF16 or AMX)',
      ),
    seed: z.number().int().nonnegative().describe('seed for order, augmentation and weights'),
    resume: z.boolean().describe('continue base training from the checkpoint in <out>/checkpoints/base'),
    validateBase: z
      .boolean()
      .describe('scoring the base on the validation images after every epoch, on by default (off: the report has no base validation curves)'),
    onError: z
      .enum(ON_ERROR_MODES)
      .describe('raise: stop at the first image that cannot be loaded, naming it; skip: leave such images out and report every one'),
    tensorboard: z.string().min(1).describe('directory for TensorBoard event files of the base training'),
    cache: z
      .preprocess(
        // A config's true and false (the switch this option once was) mean raw and off.
        (v) => (v === true ? 'raw' : v === false ? 'off' : v),
        z.custom<RunCacheFormat>((v) => v === 'off' || isCacheFormat(v), { message: 'must be raw, png, jpeg[:Q] (Q from 1 to 100) or off' }),
      )
      .describe(
        'the pixel cache of the training images under <out>/cache: raw (default: uint8 pixels, fastest to read), png (lossless, smaller, decoded as read), jpeg[:Q] (lossy, quality Q, default 90: smallest; extraction then decodes the originals) or off (every base epoch decodes)',
      ),
    shuffleBuffer: positive.describe('images the shuffle buffer holds when --data is a pack (default 2048; a directory is shuffled whole)'),
    cacheBudget: z
      .number()
      .int()
      .positive()
      .describe("what the pixel cache may take on disk, e.g. 2G (default: half the free space of out's filesystem; a cache over it is not written)"),
    augment: augmentSchema.describe(
      "augmentation replacing the seed's (rescale=1/255,shearRange=0.2,zoomRange=0.2,horizontalFlip=true): key=value pairs or JSON, e.g. rescale=1/255,rotationRange=10; without rescale pixels stay 0–255 (in training, extraction and predict alike); over a config's augment, key by key",
    ),
    base: z
      .string()
      .min(1)
      .describe('an imported base (.keras, .h5 or tfjs model.json), frozen: no base training; its input sets the image size and colour mode'),
    fineTune: z
      .union([z.literal('all'), positive], { error: "expected 'all' or a positive number of layers" })
      .describe(
        "with --base, a second phase after the head: the base's layers with weights (all, or the top N) train with the head on top at --fine-tune-lr, BatchNormalization frozen (inference mode) unless --bn-train, with the run's augmentation; then the features are extracted again",
      ),
    fineTuneEpochs: positive.describe('fine-tuning epochs (with --fine-tune)'),
    retrainHead: z
      .boolean()
      .describe(
        'with --fine-tune: after the features are extracted again, train a fresh head on them (--head-epochs, the head controls) and publish it in place of the one fine-tuned with the base',
      ),
    bnTrain: z
      .boolean()
      .describe(
        'with --fine-tune: the BatchNormalization layers above the lowest training layer train too (batch statistics over the whole global batch, summed across replicas; moving averages updated) instead of staying frozen',
      ),
    fineTuneLr: z.number().positive().describe("fine-tuning's Adam learning rate (Keras's transfer-learning guide uses 1e-5)"),
    featureLayer: z
      .string()
      .min(1)
      .describe("the base layer whose output is the feature vector (default: 'features', or the layer feeding an imported classifier)"),
    pooling: z.enum(POOLINGS).describe("global pooling after the feature layer: avg | max | none (Keras's include_top=False, pooling=…)"),
    preprocess: z
      .enum(PREPROCESS_MODES)
      .describe("Keras's preprocess_input for the base: none | tf (MobileNet, Inception) | caffe (ResNet, VGG) | torch (DenseNet)"),
    schedule: z
      .union(
        [
          z.object({ kind: z.literal('constant') }).strict(),
          z.object({ kind: z.literal('step'), every: positive, factor: z.number().gt(0).lte(1) }).strict(),
          z.object({ kind: z.literal('cosine'), minLearningRate: z.number().nonnegative().optional() }).strict(),
        ],
        { error: "expected { kind: 'constant' }, { kind: 'step', every, factor } or { kind: 'cosine', minLearningRate? }" },
      )
      .describe('learning-rate schedule of base and head training: constant, cosine[:MIN_LR] or step:EVERY:FACTOR (e.g. step:3:0.5)'),
    warmupEpochs: z.number().int().nonnegative().describe('epochs of linear learning-rate warm-up before the schedule (base and head)'),
    reduceOnPlateau: z
      .object({
        monitor: z.enum(MONITORS),
        factor: z.number().gt(0).lt(1),
        patience: z.number().int().nonnegative(),
        minDelta: z.number().nonnegative(),
        cooldown: z.number().int().nonnegative(),
        minLearningRate: z.number().nonnegative(),
      })
      .partial()
      .strict()
      .describe("Keras's ReduceLROnPlateau for base and head: PATIENCE[:FACTOR] on val_loss, e.g. 2:0.5 (in a config, its options by name)"),
    keepBest: z.boolean().describe('end base and head training with the weights of their best epoch by the best monitor, not their last'),
    bestMonitor: z.enum(MONITORS).describe('the score keepBest watches: val_loss (the default), val_acc, loss or acc'),
    classWeight: z
      .union([z.literal('balanced'), z.record(z.string().min(1), z.number().positive())], {
        error: "expected 'balanced' or weights by class name or index, e.g. { cat: 2 }",
      })
      .describe("Keras's class_weight for base and head: balanced (n / (classes · count)), or NAME=W,… by class name or index (others weigh 1)"),
  })
  .partial()
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;

/** The seed tutorial's augmentation: rescale 1/255, shear 0.2°, zoom ±20 %, horizontal flips. */
export const SEED_AUGMENT: AugmentOptions = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };

/** The default of every run option that has one: the one place defaults live. */
export const RUN_DEFAULTS = {
  data: SHIPPED_DATASET,
  out: 'runs/latest',
  imageSize: [28, 28] as [number, number],
  colorMode: 'grayscale' as ColorMode,
  batchSize: 32,
  baseEpochs: 5,
  headEpochs: 10,
  fineTuneEpochs: 5,
  fineTuneLr: 1e-5,
  bnTrain: false,
  retrainHead: false,
  seed: DEFAULT_SEED,
  resume: false,
  validateBase: true,
  onError: 'raise' as OnError,
  cache: 'raw' as RunCacheFormat,
  augment: SEED_AUGMENT,
  pooling: 'none' as Pooling,
  preprocess: 'none' as PreprocessMode,
  keepBest: false,
} satisfies { [K in keyof RunConfig]?: unknown };

type Defaulted = keyof typeof RUN_DEFAULTS;
type Undefaulted = Exclude<keyof RunConfig, Defaulted>;

/**
 * The run options with their defaults filled: each option's type is the schema's (the ones with no
 * default stay possibly undefined: the thread plan, the model or the file system decides them).
 */
export type ResolvedRunOptions = { [K in Undefaulted]: RunConfig[K] } & Omit<Required<RunConfig>, Undefaulted | 'imageSize' | 'augment'> & {
    imageSize: [number, number];
    augment: AugmentOptions;
    /** The augmentation's rescale, which extraction and the stacked model replay (1: none). */
    rescale: number;
    /**
     * Whether imageSize and colorMode were given (with `base`, they are otherwise the model's input),
     * and pooling (otherwise what train-base recorded in the base, if it did).
     */
    given: { imageSize: boolean; colorMode: boolean; pooling: boolean };
  };

/**
 * The seed's augmentation beside a preprocess_input mode: a mode replaces the seed's rescale 1/255
 * (Keras's recipe has no rescale after it); the mode itself is the caller's to apply.
 *
 * @example
 * seedAugment('tf'); // { shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true }
 */
export function seedAugment(preprocess: PreprocessMode = 'none'): AugmentOptions {
  if (preprocess === 'none') return RUN_DEFAULTS.augment;
  const { rescale: _seedRescale, ...seedWithoutRescale } = RUN_DEFAULTS.augment;
  return seedWithoutRescale;
}

/**
 * Checks `input` (from the API, or flags merged over a config file) against the run schema and
 * fills the defaults. `source` names where the options came from in errors.
 *
 * @example
 * const options = resolveRunOptions({ baseEpochs: 3, imageSize: 64 });
 */
export function resolveRunOptions(input: unknown, source = 'run options'): ResolvedRunOptions {
  const parsed = runConfigSchema.safeParse(input ?? {});
  if (!parsed.success) throw new Error(`${source} are invalid:\n${describeIssues(parsed.error.issues, '').join('\n')}`);
  const o = parsed.data as Record<string, unknown>;
  const needsFineTuning = { bnTrain: 'trains BatchNormalization in the fine-tuning phase', retrainHead: 'trains a head on the fine-tuned base’s features' };
  for (const [key, what] of Object.entries(needsFineTuning)) {
    if (o[key] === true && o.fineTune === undefined)
      throw new Error(`${source} are invalid:\n  ${key}: ${what}, and there is none: give fineTune (--fine-tune all|N)`);
  }
  if (o.fineTune !== undefined && o.base === undefined) {
    throw new Error(
      `${source} are invalid:\n  fineTune: fine-tunes an imported base, and there is none: give base (--base FILE); the seed CNN trains whole in its base phase`,
    );
  }
  const filled = Object.fromEntries(Object.keys(runConfigSchema.shape).map((key) => [key, o[key] ?? (RUN_DEFAULTS as Record<string, unknown>)[key]])) as Omit<
    ResolvedRunOptions,
    'rescale' | 'given'
  > & { imageSize: number | [number, number] };
  const imageSize: [number, number] = typeof filled.imageSize === 'number' ? [filled.imageSize, filled.imageSize] : filled.imageSize;
  // An augmentation given explicitly is kept as given.
  const augment = (o.augment ?? seedAugment(filled.preprocess)) as AugmentOptions;
  return {
    ...filled,
    imageSize,
    augment,
    rescale: augment.rescale ?? 1,
    given: { imageSize: o.imageSize !== undefined, colorMode: o.colorMode !== undefined, pooling: o.pooling !== undefined },
  };
}

/**
 * A flag's text as the value of run option `key`, checked by the option's schema: a number for a
 * number option, a name from its list for a choice, the text itself for a string. Options whose
 * text needs its own reading (imageSize, cacheBudget, augment, the switches) are not read here.
 *
 * @example
 * readRunFlag('colorMode', 'rgb', '--color-mode'); // → 'rgb'
 * readRunFlag('batchSize', '0', '--batch-size'); // throws "--batch-size must be a positive integer, received '0'"
 */
export function readRunFlag(key: keyof RunConfig, text: string, flag: string): unknown {
  const field = runConfigSchema.shape[key].unwrap();
  if (field instanceof z.ZodEnum) {
    const values = field.options as string[];
    if (values.includes(text)) return text;
    throw new Error(`${flag} must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}, received '${text}'`);
  }
  if (field instanceof z.ZodNumber) {
    const n = text.trim() === '' ? Number.NaN : Number(text);
    if (field.safeParse(n).success) return n;
    const sign = field.safeParse(0).success ? 'a non-negative' : 'a positive';
    throw new Error(`${flag} must be ${sign} ${field.safeParse(0.5).success ? 'number' : 'integer'}, received '${text}'`);
  }
  if (field instanceof z.ZodString) {
    if (field.safeParse(text).success) return text;
    throw new Error(`${flag} must not be empty`);
  }
  throw new Error(`run option ${key} is not read from a flag's text by the schema; its flag needs a reader of its own`);
}

/** The help of run option `key`, as its flag and the docs give it. */
export function runOptionHelp(key: keyof RunConfig): string {
  return runConfigSchema.shape[key].description ?? runConfigSchema.shape[key].unwrap().description ?? key;
}

/**
 * Reads and validates a config file.
 *
 * @example
 * const config = await readRunConfig('run.yaml'); // throws "config run.yaml is invalid:\n  augment.zoomRange: …"
 */
export async function readRunConfig(file: string): Promise<RunConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`config ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new Error(`config ${file}: not valid ${extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML'} (${(error as Error).message.split('\n')[0]})`);
  }
  const exotic = exoticValue(raw, '');
  if (exotic)
    throw new Error(
      `config ${file} is invalid:\n  ${exotic.key || '(top level)'}: ${exotic.what}; a config holds plain strings, numbers, booleans, lists and maps`,
    );
  const parsed = runConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new Error(`config ${file} is invalid:\n${describeIssues(parsed.error.issues, '').join('\n')}`);
  return parsed.data;
}

/** The first value of a parsed config that is not plain data (a YAML !!binary, !!set, !!timestamp, …), by key. */
function exoticValue(value: unknown, key: string): { key: string; what: string } | null {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = exoticValue(value[i], `${key}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      const found = exoticValue(v, key ? `${key}.${k}` : k);
      if (found) return found;
    }
    return null;
  }
  const name = value instanceof Uint8Array ? 'binary data (a YAML !!binary value)' : `a ${(value as object).constructor?.name ?? typeof value} value`;
  return { key, what: `is ${name}` };
}

/** One line per zod issue: the exact key, the message, and for unknown keys the known ones. */
function describeIssues(issues: z.core.$ZodIssue[], prefix: string): string[] {
  return issues.map((issue) => {
    const key = issue.path.length > 0 ? `${prefix}${issue.path.join('.')}` : prefix.replace(/\.$/, '') || '(top level)';
    const shape = issue.path[0] === 'augment' || prefix ? augmentSchema.shape : runConfigSchema.shape;
    const unknown =
      issue.code === 'unrecognized_keys'
        ? ` (unknown key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}; known: ${Object.keys(shape).join(', ')})`
        : '';
    return `  ${key}: ${issue.message}${unknown}`;
  });
}

/**
 * `--augment`: a JSON object (`'{"zoomRange":0.2}'`) or `key=value` pairs separated by commas
 * (`rescale=1/255,shearRange=0.2,horizontalFlip=true`), values read as JSON where they parse
 * (numbers, booleans, [lo,hi]), as a number for a fraction `a/b`, and as strings otherwise.
 * Checked against the same schema as the config's `augment`; a key given twice is an error.
 *
 * @example
 * parseAugmentFlag('rescale=1/255,zoomRange=[0.8,1.2],fillMode=nearest');
 * // → { rescale: 0.00392156862745098, zoomRange: [0.8, 1.2], fillMode: 'nearest' }
 */
export function parseAugmentFlag(value: string): z.infer<typeof augmentSchema> {
  let raw: unknown;
  if (value.trim().startsWith('{')) {
    try {
      raw = JSON.parse(value);
    } catch (error) {
      throw new Error(`--augment: not valid JSON (${(error as Error).message})`);
    }
  } else {
    const entries = value.split(/,(?![^[]*\])/).map((pair): [string, unknown] => {
      const eq = pair.indexOf('=');
      if (eq < 1) throw new Error(`--augment: expected key=value pairs separated by commas (e.g. shearRange=0.2,horizontalFlip=true), received '${pair}'`);
      const text = pair.slice(eq + 1).trim();
      const fraction = /^(-?\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(text);
      let parsed: unknown = fraction ? Number(fraction[1]) / Number(fraction[2]) : text;
      if (!fraction) {
        try {
          parsed = JSON.parse(text);
        } catch {
          // a bare string, e.g. fillMode=nearest
        }
      }
      return [pair.slice(0, eq).trim(), parsed];
    });
    const seen = new Set<string>();
    for (const [key] of entries) {
      if (seen.has(key)) throw new Error(`--augment: ${key} is given twice`);
      seen.add(key);
    }
    raw = Object.fromEntries(entries);
  }
  const parsed = augmentSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`--augment is invalid:\n${describeIssues(parsed.error.issues, 'augment.').join('\n')}`);
  return parsed.data;
}

/**
 * Fills `options` (the parsed flags) from `config`: a key given on the command line wins, except
 * `augment`, where the flag's keys override the file's one by one.
 *
 * @example
 * applyConfig({ headEpochs: 9 }, { headEpochs: 3, baseEpochs: 2 }, (key) => key === 'headEpochs');
 * // → { headEpochs: 9, baseEpochs: 2 }
 */
export function applyConfig(options: Record<string, unknown>, config: RunConfig, fromCommandLine: (key: string) => boolean): Record<string, unknown> {
  const out = { ...options };
  for (const [key, value] of Object.entries(config)) {
    if (fromCommandLine(key)) {
      if (key === 'augment') out.augment = { ...(value as object), ...(options.augment as object) };
      continue;
    }
    out[key] = key === 'imageSize' && typeof value === 'number' ? [value, value] : value;
  }
  return out;
}

/**
 * Engine options as the CLI and jobs spell them (`tfThreads`: threads per replica), absent ones
 * left absent so that the thread plan decides.
 */
export function engineOptions(o: { replicas?: number; tfThreads?: number; engine?: EngineKind; precision?: Precision }): EngineOptions {
  return {
    ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
    ...(o.tfThreads !== undefined ? { threadsPerReplica: o.tfThreads } : {}),
    ...(o.engine ? { engine: o.engine } : {}),
    ...(o.precision ? { precision: o.precision } : {}),
  };
}
