/** What commands print: JSON for --json, indented JSON otherwise; option groups several commands share. */
import type { Command } from 'commander';
import { ENGINE_KEYS, runFlag } from '../run-flags.js';

export const printResult = (json: boolean | undefined) => (result: unknown) =>
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);

/** The training engine's options, the same on run, train-base and extract. */
export function engineFlags(command: Command): Command {
  for (const key of ENGINE_KEYS) runFlag(command, key);
  return command;
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
