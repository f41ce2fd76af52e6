#!/usr/bin/env node
/**
 * The featherstack command: one file per command under commands/, flag parsers in parsers.ts,
 * rendering in render/. The work itself is @featherstack/pipeline's.
 */
import './env.js';
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { register as bench } from './commands/bench.js';
import { register as doctor } from './commands/doctor.js';
import { register as evaluate } from './commands/evaluate.js';
import { register as exportKeras } from './commands/export.js';
import { register as extract } from './commands/extract.js';
import { register as inspect } from './commands/inspect.js';
import { register as pack } from './commands/pack.js';
import { register as predict } from './commands/predict.js';
import { register as run } from './commands/run.js';
import { register as trainBase } from './commands/train-base.js';
import { register as trainHead } from './commands/train-head.js';
import { register as worker } from './commands/worker.js';
import { useColor } from './render/progress.js';

const program = new Command()
  .name('featherstack')
  .description('Train stacked image models on Node.js: parallel image pipeline → base CNN → Arrow features → head.')
  .version((createRequire(import.meta.url)('../package.json') as { version: string }).version)
  .showHelpAfterError('(see --help for usage)')
  // Usage errors (unknown option, missing or invalid argument) exit with 2, as documented; help with 0.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

for (const register of [run, doctor, trainBase, extract, trainHead, predict, evaluate, exportKeras, inspect, pack, worker, bench]) register(program);

program.parseAsync().catch((error: Error) => {
  const prefix = useColor(process.stderr) ? '\u001b[31mfeatherstack:\u001b[0m' : 'featherstack:';
  // An image that cannot be loaded stops a command under --on-error raise (the default): say how to go on without it.
  const hint = (error as { code?: string }).code === 'FEATHERSTACK_IMAGE_DECODE' ? ' (--on-error skip leaves such images out and reports each one)' : '';
  process.stderr.write(`${prefix} ${error.message}${hint}\n`);
  process.exit(1);
});
