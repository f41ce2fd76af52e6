/**
 * The run's options, defined once: one schema checks them whether they come from flags, a config
 * file (`--config run.yaml`) or the API (runWorkflow), and one resolver fills the defaults that
 * every stage — the workflow, the stage commands, the trainer service — then shares. Errors name
 * the source (file or flag), the exact key and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { EngineKind, Pooling, Precision } from '@featherstack/core';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import type { AUGMENT_KEYS, AugmentOptions, ColorMode, PreprocessMode } from '@featherstack/images';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

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
    fillMode: z.enum(['constant', 'nearest', 'reflect', 'wrap']),
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
    preprocess: z.enum(['none', 'tf', 'caffe', 'torch']),
  } satisfies Record<(typeof AUGMENT_KEYS)[number], z.ZodType>)
  .partial()
  .strict();

export const runConfigSchema = z
  .object({
    data: z.string().min(1).describe('dataset with train/ and val/ class folders'),
    out: z.string().min(1).describe('output directory'),
    imageSize: z
      .union([positive, z.tuple([positive, positive])], { error: 'expected a positive integer N or [height, width]' })
      .describe('N or [height, width]'),
    colorMode: z.enum(['grayscale', 'rgb', 'rgba']),
    batchSize: positive,
    baseEpochs: positive,
    headEpochs: positive,
    workers: positive,
    tfThreads: positive,
    replicas: positive,
    engine: z.enum(['graph', 'eager']),
    precision: z.enum(['float32', 'mixed-bfloat16']),
    seed: z.number().int().nonnegative(),
    resume: z.boolean(),
    validateBase: z.boolean(),
    onError: z.enum(['raise', 'skip']),
    tensorboard: z.string().min(1).describe('directory for TensorBoard event files of the base training'),
    cache: z.boolean().describe('keep a pixel cache of the training images under out/cache'),
    cacheBudget: z
      .number()
      .positive()
      .describe("bytes the pixel cache may take (default half the free space of out's filesystem); a cache over it is not written"),
    augment: augmentSchema.describe('ImageDataGenerator options, e.g. { shearRange: 0.2, horizontalFlip: true }'),
    base: z.string().min(1).describe('an imported base (.keras, .h5 or tfjs model.json), frozen: features are extracted with it, no base training'),
    featureLayer: z
      .string()
      .min(1)
      .describe("the base layer whose output is the feature vector (default: 'features', or the layer feeding an imported classifier)"),
    pooling: z.enum(['avg', 'max', 'none']).describe("global pooling after the feature layer, as Keras's include_top=False, pooling=…"),
    preprocess: z
      .enum(['none', 'tf', 'caffe', 'torch'])
      .describe("Keras's preprocess_input mode for the base (MobileNet/Inception: tf, ResNet/VGG: caffe, DenseNet: torch)"),
  })
  .partial()
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;

/** The seed tutorial's augmentation: rescale 1/255, shear 0.2°, zoom ±20 %, horizontal flips. */
export const SEED_AUGMENT: AugmentOptions = { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true };

/** Every run option with its default: the one place defaults live. */
export interface ResolvedRunOptions {
  data: string;
  out: string;
  imageSize: [number, number];
  colorMode: ColorMode;
  batchSize: number;
  baseEpochs: number;
  headEpochs: number;
  workers: number | undefined;
  tfThreads: number | undefined;
  replicas: number | undefined;
  engine: EngineKind | undefined;
  precision: Precision | undefined;
  seed: number;
  resume: boolean;
  validateBase: boolean;
  onError: 'raise' | 'skip';
  tensorboard: string | undefined;
  cache: boolean;
  /** Bytes the pixel cache may take; undefined: half the free space of its filesystem. */
  cacheBudget: number | undefined;
  augment: AugmentOptions;
  /** The augmentation's rescale, which extraction and the stacked model replay (1: none). */
  rescale: number;
  /** An imported base, frozen (no base training); undefined: train the seed's CNN. */
  base: string | undefined;
  featureLayer: string | undefined;
  pooling: Pooling;
  preprocess: PreprocessMode;
  /**
   * Whether imageSize and colorMode were given (with `base`, they are otherwise the model's input),
   * and pooling (otherwise what train-base recorded in the base, if it did).
   */
  given: { imageSize: boolean; colorMode: boolean; pooling: boolean };
}

export const RUN_DEFAULTS = {
  data: SHIPPED_DATASET,
  out: 'runs/latest',
  imageSize: [28, 28] as [number, number],
  colorMode: 'grayscale' as ColorMode,
  batchSize: 32,
  baseEpochs: 5,
  headEpochs: 10,
  seed: 42,
  resume: false,
  validateBase: true,
  onError: 'raise' as const,
  cache: true,
  augment: SEED_AUGMENT,
  pooling: 'none' as Pooling,
  preprocess: 'none' as PreprocessMode,
};

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
  const o = parsed.data;
  const imageSize: [number, number] = typeof o.imageSize === 'number' ? [o.imageSize, o.imageSize] : (o.imageSize ?? RUN_DEFAULTS.imageSize);
  const preprocess = o.preprocess ?? RUN_DEFAULTS.preprocess;
  // A preprocess_input mode replaces the seed's rescale (Keras's recipe has no rescale after it); an
  // augmentation given explicitly is kept as given.
  const { rescale: _seedRescale, ...seedWithoutRescale } = RUN_DEFAULTS.augment;
  const augment = (o.augment ?? (preprocess === 'none' ? RUN_DEFAULTS.augment : seedWithoutRescale)) as AugmentOptions;
  return {
    data: o.data ?? RUN_DEFAULTS.data,
    out: o.out ?? RUN_DEFAULTS.out,
    imageSize,
    colorMode: o.colorMode ?? RUN_DEFAULTS.colorMode,
    batchSize: o.batchSize ?? RUN_DEFAULTS.batchSize,
    baseEpochs: o.baseEpochs ?? RUN_DEFAULTS.baseEpochs,
    headEpochs: o.headEpochs ?? RUN_DEFAULTS.headEpochs,
    workers: o.workers,
    tfThreads: o.tfThreads,
    replicas: o.replicas,
    engine: o.engine,
    precision: o.precision,
    seed: o.seed ?? RUN_DEFAULTS.seed,
    resume: o.resume ?? RUN_DEFAULTS.resume,
    validateBase: o.validateBase ?? RUN_DEFAULTS.validateBase,
    onError: o.onError ?? RUN_DEFAULTS.onError,
    tensorboard: o.tensorboard,
    cache: o.cache ?? RUN_DEFAULTS.cache,
    cacheBudget: o.cacheBudget,
    augment,
    rescale: augment.rescale ?? 1,
    base: o.base,
    featureLayer: o.featureLayer,
    pooling: o.pooling ?? RUN_DEFAULTS.pooling,
    preprocess,
    given: { imageSize: o.imageSize !== undefined, colorMode: o.colorMode !== undefined, pooling: o.pooling !== undefined },
  };
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
