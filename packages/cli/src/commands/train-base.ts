/** `featherstack train-base`: the base on its own, in process or in a trainer worker thread. */
import { RUN_DEFAULTS, trainBaseStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { engineFrom, engineFlags, printResult } from '../render/output.js';

export function register(program: Command): void {
  engineFlags(program.command('train-base'))
    .description('train the base CNN on class folders and save it (out/base/model.json, out/base-history.json)')
    .requiredOption('--data <dir>', 'training images, one subdirectory per class')
    .option('--validation <dir>', 'validation images (not augmented), evaluated every epoch')
    .option('--out <dir>', 'output directory', 'runs/base')
    .option('--image-size <HxW>', 'target image size', parse.size, RUN_DEFAULTS.imageSize)
    .option('--color-mode <mode>', 'grayscale | rgb | rgba', parse.colorMode, RUN_DEFAULTS.colorMode)
    .option('--batch-size <n>', 'batch size', parse.int('--batch-size'), RUN_DEFAULTS.batchSize)
    .option('--epochs <n>', 'epochs', parse.int('--epochs'), RUN_DEFAULTS.baseEpochs)
    .option('--patience <n>', 'early stopping on validation loss (needs --validation)', parse.int('--patience'))
    .option('--feature-layer <name>', 'the layer extract will cut the saved base at, checked now and recorded in its model.json', 'features')
    .option('--pooling <mode>', 'global pooling after the feature layer, recorded with it: avg | max | none', parse.pooling, RUN_DEFAULTS.pooling)
    .option('--seed <n>', 'seed (as run)', parse.int('--seed'), RUN_DEFAULTS.seed)
    .option('--worker', 'train in a dedicated worker thread (comlink) instead of in process')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const result = await trainBaseStage({
        train: opts.data,
        ...(opts.validation ? { validation: opts.validation } : {}),
        out: opts.out,
        targetSize: opts.imageSize,
        colorMode: opts.colorMode,
        batchSize: opts.batchSize,
        epochs: opts.epochs,
        seed: opts.seed,
        featureLayer: opts.featureLayer,
        pooling: opts.pooling,
        augment: RUN_DEFAULTS.augment,
        ...(opts.patience !== undefined ? { patience: opts.patience } : {}),
        ...engineFrom(opts),
        worker: opts.worker ?? false,
        log: opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
      });
      printResult(opts.json)(result);
    });
}
