/** `featherstack evaluate`: a stacked model over class folders. */
import { evaluate, RUN_DEFAULTS, runOptionHelp } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('evaluate a stacked model on a directory of class folders: accuracy, top-k, per-class metrics, confusion matrix')
    .requiredOption('--data <dir>', 'images in one subdirectory per class')
    .option('--model <dir>', 'stacked model directory', 'runs/latest/model')
    .option('--workers <n>', 'image decode workers (default: all cores)', parse.int('--workers'))
    .option('--on-error <mode>', runOptionHelp('onError'), parse.onError, RUN_DEFAULTS.onError)
    .option('--json', 'print the whole evaluation as JSON')
    .action(async (opts) => {
      const report = await evaluate({ model: opts.model, data: opts.data, workers: opts.workers, onError: opts.onError });
      for (const s of report.skipped) process.stderr.write(`featherstack: skipped ${s.path}: ${s.reason}\n`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      process.stdout.write(
        `samples ${report.samples}, accuracy ${report.accuracy.toFixed(4)}, ${Object.entries(report.topK)
          .map(([k, v]) => `top-${k} ${v.toFixed(4)}`)
          .join(', ')}, macro F1 ${report.macro.f1.toFixed(4)}\n`,
      );
      for (const m of report.perClass)
        process.stdout.write(
          `  ${m.name.padEnd(16)} precision ${m.precision.toFixed(3)}  recall ${m.recall.toFixed(3)}  F1 ${m.f1.toFixed(3)}  (${m.support})\n`,
        );
    });
}
