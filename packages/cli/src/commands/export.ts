/** `featherstack export`: a model back to Python, as a Keras 3 `.keras` file. */
import { exportKerasStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import { printResult } from '../render/output.js';

export function register(program: Command): void {
  program
    .command('export')
    .description('write a model as a Keras 3 .keras file that keras.saving.load_model reads: a stacked model (run, train-head) or a base')
    .option('--model <dir|file>', 'a stacked model directory, or a base (.keras, .h5, tfjs model.json)', 'runs/latest/model')
    .requiredOption('--out <file.keras>', 'the Keras file to write')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
  A stacked model's inputs are the pixels after its rescale and preprocess, as featherstack's predict feeds them; the archive
  carries its image settings and class names as featherstack.json. Layers Keras has no class for (featherstack's extensions of
  imported models) and recurrent heads are refused by name.`,
    )
    .action(async (opts) => {
      printResult(opts.json)(await exportKerasStage({ model: opts.model, out: opts.out }));
    });
}
