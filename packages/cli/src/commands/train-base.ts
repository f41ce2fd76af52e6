/** `featherstack train-base`: the base on its own, in process or in a trainer worker thread. */
import { seedAugment, trainBaseStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { engineFrom, engineFlags, printResult } from '../render/output.js';
import { controlFlags, controlsFrom, runFlag } from '../run-flags.js';

export function register(program: Command): void {
  const command = program
    .command('train-base')
    .description('train the base CNN on class folders and save it (out/base/model.json, out/base-history.json)')
    .requiredOption('--data <dir>', 'training images, one subdirectory per class')
    .option('--validation <dir>', 'validation images (not augmented), evaluated every epoch')
    .option('--out <dir>', 'output directory', 'runs/base')
    .option(
      '--model <file>',
      'fine-tune this pretrained base (.keras, .h5, tfjs model.json) instead of training the seed CNN; its input sets the image size and colour mode',
    )
    .option(
      '--fine-tune <all|n>',
      "with --model: the layers that train, all (default) or the top N with weights; BatchNormalization stays frozen, as Keras's guide keeps it",
      parse.fineTune,
    )
    .option('--bn-train', 'with --model: BatchNormalization layers above the lowest training layer train too (batch statistics, synchronised across replicas)')
    .option('--learning-rate <lr>', 'learning rate (default 1e-3; with --model 1e-5)', parse.positiveNumber('--learning-rate'));
  runFlag(command, 'preprocess', {
    help: "Keras's preprocess_input for a --model base: none | tf | caffe | torch (replaces the rescale 1/255)",
    fallback: null,
  });
  // The options it shares with run: their values, help and defaults are run's.
  for (const key of ['imageSize', 'colorMode', 'batchSize'] as const) runFlag(command, key);
  runFlag(command, 'baseEpochs', { flag: '--epochs', help: 'epochs' });
  engineFlags(command)
    .option('--patience <n>', 'early stopping on validation loss (needs --validation)', parse.int('--patience'))
    .option(
      '--feature-layer <name>',
      "the layer extract will cut the saved base at, checked now and recorded in its model.json (default: 'features'; with --model, the layer feeding its classifier, or its output)",
    );
  runFlag(command, 'pooling', { help: 'global pooling after the feature layer, recorded with it: avg | max | none' });
  runFlag(command, 'seed');
  controlFlags(command)
    .option('--worker', 'train in a dedicated worker thread (comlink) instead of in process')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      // A --model base's input sets the colour mode unless it is given.
      const colorGiven = cmd.getOptionValueSource('colorMode') !== 'default';
      const result = await trainBaseStage({
        train: opts.data,
        ...(opts.validation ? { validation: opts.validation } : {}),
        out: opts.out,
        targetSize: opts.imageSize,
        ...(opts.model && !colorGiven ? {} : { colorMode: opts.colorMode }),
        batchSize: opts.batchSize,
        epochs: opts.epochs,
        seed: opts.seed,
        ...(opts.featureLayer ? { featureLayer: opts.featureLayer } : {}),
        pooling: opts.pooling,
        // train-base's flows take the mode from the augmentation.
        augment: { ...seedAugment(opts.preprocess), ...(opts.preprocess && opts.preprocess !== 'none' ? { preprocess: opts.preprocess } : {}) },
        ...(opts.model ? { model: opts.model, fineTune: opts.fineTune ?? 'all', bnTrain: opts.bnTrain ?? false } : {}),
        ...(opts.learningRate !== undefined ? { learningRate: opts.learningRate } : {}),
        ...(opts.patience !== undefined ? { patience: opts.patience } : {}),
        ...controlsFrom(opts),
        ...engineFrom(opts),
        worker: opts.worker ?? false,
        log: opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
      });
      printResult(opts.json)(result);
    });
}
