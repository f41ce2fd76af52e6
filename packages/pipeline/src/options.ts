/**
 * `featherstack run --config file.(yaml|yml|json)`: the run's options in one file, validated with
 * a schema; errors name the file, the exact key and what was expected. Flags given on the command
 * line override the file.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AUGMENT_KEYS } from '@featherstack/images';
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
  } satisfies Record<(typeof AUGMENT_KEYS)[number], z.ZodType>)
  .partial()
  .strict();

export const runConfigSchema = z
  .object({
    data: z.string().min(1).describe('dataset with train/ and val/ class folders'),
    out: z.string().min(1).describe('output directory'),
    imageSize: z.union([positive, z.tuple([positive, positive])], { error: 'expected a positive integer N or [height, width]' }).describe('N or [height, width]'),
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
    tensorboard: z.string().min(1),
    augment: augmentSchema.describe('ImageDataGenerator options, e.g. { shearRange: 0.2, horizontalFlip: true }'),
  })
  .partial()
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;

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
  const parsed = runConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new Error(`config ${file} is invalid:\n${describeIssues(parsed.error.issues, '').join('\n')}`);
  return parsed.data;
}

/** One line per zod issue: the exact key, the message, and for unknown keys the known ones. */
function describeIssues(issues: z.core.$ZodIssue[], prefix: string): string[] {
  return issues.map((issue) => {
    const key = issue.path.length > 0 ? `${prefix}${issue.path.join('.')}` : prefix.replace(/\.$/, '') || '(top level)';
    const shape = issue.path[0] === 'augment' || prefix ? augmentSchema.shape : runConfigSchema.shape;
    const unknown = issue.code === 'unrecognized_keys' ? ` (unknown key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}; known: ${Object.keys(shape).join(', ')})` : '';
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
