/** `featherstack extract`: a saved base's features of class folders into an Arrow file. */
import type { ColorMode } from '@featherstack/images';
import { extractStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { engineFrom, engineOptions, printResult } from '../render/output.js';
import { Progress } from '../render/progress.js';

export function register(program: Command): void {
  engineOptions(program.command('extract'))
    .description("extract a saved base's features of class folders into an Arrow file")
    .requiredOption('--model <file>', 'the base: model.json (from train-base, or any tfjs layers model with a "features" layer)')
    .requiredOption('--data <dir>', 'images, one subdirectory per class')
    .requiredOption('--out <file>', 'the feature file to write (.arrow)')
    .option('--image-size <HxW>', 'target image size', parse.size, [28, 28] as [number, number])
    .option('--color-mode <mode>', 'grayscale | rgb | rgba', parse.colorMode, 'grayscale' as ColorMode)
    .option('--batch-size <n>', 'batch size', parse.int('--batch-size'), 256)
    .option('--shard <i/n>', 'extract only shard i of n (sample index mod n = i)', parse.shard)
    .option('--l2', 'L2-normalise every feature row')
    .option('--resume', 'continue an interrupted extraction from its journal')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const progress = new Progress({ json: opts.json });
      let result: Awaited<ReturnType<typeof extractStage>>;
      try {
        result = await extractStage({
          model: opts.model,
          data: opts.data,
          out: opts.out,
          targetSize: opts.imageSize,
          colorMode: opts.colorMode,
          batchSize: opts.batchSize,
          ...(opts.shard ? { shard: opts.shard } : {}),
          l2: opts.l2 ?? false,
          resume: opts.resume ?? false,
          ...engineFrom(opts),
          onBatch: progress.extract(opts.out),
        });
      } finally {
        progress.stop();
      }
      if (result.discardedJournal) process.stderr.write(`featherstack: ${result.discardedJournal}; extracted ${result.path} from the start\n`);
      printResult(opts.json)(result);
    });
}
