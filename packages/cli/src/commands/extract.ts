/** `featherstack extract`: a saved base's features of class folders into an Arrow file. */
import type { ColorMode, PreprocessMode } from '@featherstack/images';
import { extractStage } from '@featherstack/pipeline';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { engineFrom, engineFlags, printResult } from '../render/output.js';
import { runFlag } from '../run-flags.js';
import { Progress } from '../render/progress.js';
import { queueUrl } from './worker.js';

/** The coordinator: shards on the queue's workers, followed to the end, then the set checked. */
interface DistributedFlags {
  queue?: string;
  config?: string;
  model: string;
  data: string;
  out: string;
  shardSize: number;
  imageSize?: [number, number];
  colorMode?: ColorMode;
  batchSize?: number;
  featureLayer?: string;
  pooling?: 'avg' | 'max' | 'none';
  preprocess?: PreprocessMode;
  repair?: boolean;
  json?: boolean;
}

/** The flags' image size and colour mode, else the base model's input's (refused by flag name when it declares none). */
async function imageSettings(opts: DistributedFlags): Promise<{ targetSize: [number, number]; colorMode: ColorMode }> {
  if (opts.imageSize && opts.colorMode) return { targetSize: opts.imageSize, colorMode: opts.colorMode };
  const [{ loadTensorFlow }, { loadBaseModel }, { inputImageSettings }] = await Promise.all([
    import('@featherstack/tensorflow'),
    import('@featherstack/core'),
    import('@featherstack/pipeline'),
  ]);
  const base = await loadBaseModel(loadTensorFlow(), opts.model);
  try {
    return inputImageSettings(base, opts.model, { targetSize: opts.imageSize, colorMode: opts.colorMode });
  } finally {
    base.dispose();
  }
}

async function distributed(opts: DistributedFlags): Promise<void> {
  const { extractDistributed, parseQueueUrl } = await import('@featherstack/cluster');
  const connection = parseQueueUrl(await queueUrl(opts));
  const interactive = !opts.json && process.stderr.isTTY;
  let last = '';
  const image = await imageSettings(opts);
  const result = await extractDistributed({
    connection,
    model: opts.model,
    data: opts.data,
    out: opts.out,
    shardSize: opts.shardSize,
    // The queue's jobs carry explicit settings: the model's own input where none are given; the
    // batch is sized by each worker from the model and its replicas, as `extract` sizes it.
    imageSize: image.targetSize,
    colorMode: image.colorMode,
    ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
    ...(opts.featureLayer ? { featureLayer: opts.featureLayer } : {}),
    ...(opts.pooling ? { pooling: opts.pooling } : {}),
    ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
    repair: opts.repair ?? false,
    log: opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
    onProgress: (p) => {
      const line = `shards ${p.done}/${p.shards} done, ${p.active} active, ${p.waiting} waiting, ${p.failed} failed; ${p.rows}/${p.total} images (${(p.rows / Math.max(p.seconds, 1e-3)).toFixed(0)}/s)`;
      if (opts.json || line === last) return;
      last = line;
      process.stderr.write(interactive ? `\r${line}\u001b[K` : `${line}\n`);
    },
  });
  if (interactive) process.stderr.write('\n');
  printResult(opts.json)(result);
}

export function register(program: Command): void {
  const command = program
    .command('extract')
    .description("extract a saved base's features of class folders into an Arrow file")
    .requiredOption('--model <file>', 'the base: a .keras, .h5 or tfjs model.json (from train-base, or any pretrained model)')
    .requiredOption('--data <dir>', 'images, one subdirectory per class')
    .requiredOption('--out <file>', 'the feature file to write (.arrow); with --queue, the shard directory every worker can write');
  // The options it shares with run take run's values; their defaults here come from the model.
  runFlag(command, 'imageSize', { help: "target image size (default: the model's input)", fallback: null });
  runFlag(command, 'colorMode', { help: "grayscale | rgb | rgba (default: the model's input channels)", fallback: null });
  runFlag(command, 'batchSize', { help: "batch size (default: sized from the model's activation memory)", fallback: null });
  runFlag(command, 'featureLayer', {
    help: "the layer whose output is the feature vector (default: 'features', the layer train-base recorded, or the layer feeding the model's classifier)",
  });
  runFlag(command, 'pooling', {
    help: 'global pooling after the feature layer: avg | max | none (default: as train-base recorded it, else none)',
    fallback: null,
  });
  runFlag(command, 'preprocess', {
    help: "Keras's preprocess_input mode: none | tf | caffe | torch (replaces the default rescale 1/255)",
    fallback: null,
  });
  engineFlags(command)
    .option('--shard <i/n>', 'extract only shard i of n (sample index mod n = i)', parse.shard)
    .option('--l2', 'L2-normalise every feature row')
    .option('--resume', 'continue an interrupted extraction from its journal')
    .option('--queue <url>', 'extract on the workers of this job queue (redis:// or rediss://; also FEATHERSTACK_QUEUE): shards of --shard-size images')
    .option('--shard-size <n>', 'images per shard with --queue', parse.int('--shard-size'), 1000)
    .option('--repair', 'with --queue: extract anew any finished shard found damaged (its file kept as .damaged) instead of refusing')
    .option('--config <file>', "with --queue's role: a YAML or JSON file with the queue's URL under 'queue'")
    .option('--json', 'print JSON')
    .action(async (opts) => {
      if (opts.queue !== undefined || opts.config !== undefined || process.env.FEATHERSTACK_QUEUE) return distributed(opts);
      const progress = new Progress({ json: opts.json });
      let result: Awaited<ReturnType<typeof extractStage>>;
      try {
        result = await extractStage({
          model: opts.model,
          data: opts.data,
          out: opts.out,
          ...(opts.imageSize ? { targetSize: opts.imageSize } : {}),
          ...(opts.colorMode ? { colorMode: opts.colorMode } : {}),
          ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
          ...(opts.featureLayer ? { featureLayer: opts.featureLayer } : {}),
          ...(opts.pooling ? { pooling: opts.pooling } : {}),
          ...(opts.preprocess ? { preprocess: opts.preprocess } : {}),
          log: opts.json ? () => {} : (line: string) => process.stderr.write(`featherstack: ${line}\n`),
          ...(opts.shard ? { shard: opts.shard } : {}),
          l2: opts.l2 ?? false,
          resume: opts.resume ?? false,
          ...engineFrom(opts),
          onBatch: progress.extract(opts.out),
        });
      } finally {
        progress.stop();
      }
      if (result.fallback && !opts.json) process.stderr.write(`featherstack: extraction ran on the eager engine: ${result.fallback}\n`);
      if (result.discardedJournal) process.stderr.write(`featherstack: ${result.discardedJournal}; extracted ${result.path} from the start\n`);
      printResult(opts.json)(result);
    });
}
