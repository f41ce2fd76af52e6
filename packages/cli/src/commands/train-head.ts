/** `featherstack train-head`: a head from feature files, saved with its evaluation. */
import { trainHeadStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { printResult } from '../render/output.js';
import { Progress } from '../render/progress.js';
import { controlFlags, controlsFrom, runFlag } from '../run-flags.js';

export function register(program: Command): void {
  const command = program
    .command('train-head')
    .description('train the head from feature files and save it with its evaluation (out/head/model.json, out/head-evaluation.json)')
    .requiredOption('--train <file|dir>', 'training feature file, or a directory of shard files')
    .requiredOption('--val <file>', 'validation feature file')
    .option('--out <dir>', 'output directory', 'runs/head')
    .option('--units <list>', 'hidden dense layers, comma-separated (empty for none)', parse.units, [128])
    .option('--patience <n>', 'early stopping on validation loss', parse.int('--patience'))
    .option('--stream <rows>', 'read the training files batch by batch through a shuffle buffer of this many rows', parse.int('--stream'))
    .option('--recurrent <kind:units>', 'a GRU or LSTM head over features declared as sequences (gru:32)', parse.recurrentHead)
    .option('--json', 'print JSON');
  runFlag(command, 'headEpochs', { flag: '--epochs', help: 'epochs' });
  runFlag(command, 'seed');
  controlFlags(command).action(async (opts) => {
    const progress = new Progress({ json: opts.json });
    let result: Awaited<ReturnType<typeof trainHeadStage>>;
    try {
      result = await trainHeadStage({
        train: opts.train,
        val: opts.val,
        out: opts.out,
        units: opts.units,
        epochs: opts.epochs,
        seed: opts.seed,
        ...(opts.patience !== undefined ? { patience: opts.patience } : {}),
        ...(opts.stream !== undefined ? { stream: opts.stream } : {}),
        ...(opts.recurrent ? { recurrent: opts.recurrent } : {}),
        ...controlsFrom(opts),
        onEpochEnd: progress.head,
      });
    } finally {
      progress.stop();
    }
    printResult(opts.json)(result);
  });
}
