/** What commands print: JSON for --json, indented JSON otherwise; option groups several commands share. */
import type { Command } from 'commander';
import * as parse from '../parsers.js';

export const printResult = (json: boolean | undefined) => (result: unknown) =>
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);

export const ON_ERROR_HELP = 'raise: stop at the first image that cannot be loaded, naming it; skip: leave such images out and report every one';

/** The training engine's options, the same on run, train-base and extract. */
export function engineFlags(command: Command): Command {
  return command
    .option(
      '--replicas <n>',
      'data-parallel trainer replicas, each a TensorFlow session (default: the thread plan, see doctor; at most the core count)',
      parse.int('--replicas'),
    )
    .option('--tf-threads <n>', 'TensorFlow intra-op threads per replica (default: the thread plan, see doctor)', parse.int('--tf-threads'))
    .option(
      '--engine <engine>',
      'graph (one compiled TensorFlow graph per step, the default where the model compiles) or eager (tfjs ops, one replica)',
      parse.engine,
    )
    .option(
      '--precision <p>',
      'float32 (default) or mixed-bfloat16 (graph engine: layers compute in bfloat16, weights and optimizer stay float32; about 2× faster on CPUs with AVX512_BF16 or AMX)',
      parse.precision,
    );
}

/** Those options as the API takes them (absent flags stay absent: the plan decides). */
export function engineFrom(opts: { replicas?: number; tfThreads?: number; engine?: 'graph' | 'eager'; precision?: 'float32' | 'mixed-bfloat16' }) {
  return {
    ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
    ...(opts.tfThreads !== undefined ? { tfThreads: opts.tfThreads } : {}),
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.precision ? { precision: opts.precision } : {}),
  };
}
