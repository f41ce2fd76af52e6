/** `featherstack predict`: images through a saved stacked model. */
import { predict, RUN_DEFAULTS, runOptionHelp } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';

export function register(program: Command): void {
  program
    .command('predict')
    .description('classify images (files or directories) with a stacked model saved by `featherstack run`')
    .argument('<images...>', 'image files or directories')
    .option('--model <dir>', 'stacked model directory', 'runs/latest/model')
    .option('--top <n>', 'classes to report per image', parse.int('--top'), 3)
    .option('--workers <n>', 'image decode workers (default: all cores)', parse.int('--workers'))
    .option('--on-error <mode>', runOptionHelp('onError'), parse.onError, RUN_DEFAULTS.onError)
    .option('--json', 'print JSON: one entry per image, { path, classes } or { path, error }')
    .action(async (images: string[], opts) => {
      const results = await predict({ model: opts.model, inputs: images, top: opts.top, workers: opts.workers, onError: opts.onError });
      if (opts.json) process.stdout.write(`${JSON.stringify(results)}\n`);
      else {
        for (const r of results) {
          if (r.error) process.stderr.write(`featherstack: skipped ${r.path}: ${r.error}\n`);
          else process.stdout.write(`${r.path}\t${r.classes.map((c) => `${c.className} ${(c.probability * 100).toFixed(1)}%`).join('\t')}\n`);
        }
      }
    });
}
