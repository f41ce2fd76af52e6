/**
 * `featherstack run --config file.(yaml|yml|json)`: the run's options in one file, validated with
 * a schema; errors name the file, the exact key and what was expected. Flags given on the command
 * line override the file.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const positive = z.number().int().positive();

export const runConfigSchema = z
  .object({
    data: z.string().min(1).describe('dataset with train/ and val/ class folders'),
    out: z.string().min(1).describe('output directory'),
    imageSize: z.union([positive, z.tuple([positive, positive])]).describe('N or [height, width]'),
    colorMode: z.enum(['grayscale', 'rgb', 'rgba']),
    batchSize: positive,
    baseEpochs: positive,
    headEpochs: positive,
    workers: positive,
    tfThreads: positive,
    seed: z.number().int().nonnegative(),
    resume: z.boolean(),
    tensorboard: z.string().min(1),
    augment: z.record(z.string(), z.unknown()).describe('ImageDataGenerator options, e.g. { shearRange: 0.2, horizontalFlip: true }'),
  })
  .partial()
  .strict();

export type RunConfig = z.infer<typeof runConfigSchema>;

/** Reads and validates a config file. */
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
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      const unknown = issue.code === 'unrecognized_keys' ? ` (unknown key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}; known: ${Object.keys(runConfigSchema.shape).join(', ')})` : '';
      return `  ${key}: ${issue.message}${unknown}`;
    });
    throw new Error(`config ${file} is invalid:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
