/**
 * `featherstack bench <suite>`: the suites live in the repository's benchmarks package
 * (@featherstack/benchmarks, a source checkout's, not published), loaded when a suite runs.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import * as parse from '../parsers.js';
import { printResult } from '../render/output.js';

type Suites = typeof import('@featherstack/benchmarks');

async function suites(): Promise<Suites> {
  try {
    return await import('@featherstack/benchmarks');
  } catch (error) {
    throw new Error(
      `featherstack bench runs from a source checkout of featherstack (its benchmarks package is not installed here: ${(error as Error).message.split('\n')[0]})`,
    );
  }
}

/** Exits with usage status 2 unless --dataset is one of `choices`. */
function checkDataset(command: Command, value: string, choices: string[]): void {
  if (!choices.includes(value))
    command.error(`--dataset must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, received '${value}'`, { exitCode: 2 });
}

/** The output options every bench suite takes (after its own): peers when it has any, JSON, markdown, chart. */
function suiteOutputOptions(command: Command, chart: string, peers?: string): Command {
  if (peers) command.option('--no-peers', peers);
  return command
    .option('--json [file]', 'print the result as JSON (and write it to file)')
    .option('--markdown <file>', 'write a markdown table')
    .option('--chart <file.png>', chart);
}

/** Those options as a suite function takes them, with progress lines on stderr. */
function suiteOutputs(opts: { peers?: boolean; json?: string | boolean; markdown?: string; chart?: string }) {
  return {
    peers: opts.peers,
    json: typeof opts.json === 'string' ? opts.json : undefined,
    markdown: opts.markdown,
    chart: opts.chart,
    log: (line: string) => process.stderr.write(`${line}\n`),
  };
}

export function register(program: Command): void {
  const bench = program.command('bench').description('run a benchmark suite (from a source checkout); peer rows need Python tensorflow');
  suiteOutputOptions(
    bench
      .command('images')
      .description('image pipeline images/s: raw ceiling, 1…cores workers, fastDecode, pixel cache, Keras ImageDataGenerator, tf.data')
      .option('--dataset <name>', 'photos (2,000 JPEGs, 224², from Debian wallpapers) | fashion-mnist (60,000, 28² grayscale) | shipped', 'photos')
      .option('--data <dir>', "override the dataset's directory")
      .option('--size <n>', 'square target size (default: 224 for photos, 28 otherwise)', parse.int('--size'))
      .option('--epochs <n>', 'timed epochs per run', parse.int('--epochs'), 1)
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a chart of images/s against worker count',
    'skip the Keras and tf.data rows',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['photos', 'fashion-mnist', 'shipped']);
    const result = await (await suites()).benchImages({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      data: opts.data,
      size: opts.size,
      epochs: opts.epochs,
      repeats: opts.repeats,
    });
    printResult(opts.json)(result);
  });

  bench
    .command('all')
    .description(
      'every suite in turn (images, training, extraction, head, workflow, and backbones unless --dataset shipped) into one directory: JSON, markdown and charts per suite, and summary.md',
    )
    .option('--dataset <name>', 'photos (images at 224², workflow on full Fashion-MNIST, the rest on the shipped subset) | fashion-mnist | shipped', 'photos')
    .option('--out <dir>', 'results directory', 'benchmarks/results/latest')
    .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3)
    .option('--no-peers', 'skip the Keras and tf.data rows')
    .option('--json', 'print the results as JSON')
    .action(async (opts) => {
      checkDataset(bench, opts.dataset, ['photos', 'fashion-mnist', 'shipped']);
      const result = await (await suites()).benchAll({
        dataset: opts.dataset,
        out: opts.out,
        peers: opts.peers,
        repeats: opts.repeats,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `results in ${opts.out} (summary: ${result.summary})\n`);
    });

  suiteOutputOptions(
    bench
      .command('backbones')
      .description(
        'real backbones at 224² (MobileNetV2, ResNet50, EfficientNetB0): featherstack float32 and bfloat16 vs Keras and PyTorch; run --base vs Keras',
      )
      .option('--data <dir>', 'override: a directory with train/ and val/ class folders of photos')
      .option('--archs <list>', 'comma-separated: mobilenetv2,resnet50,efficientnetb0', (v: string) => v.split(','))
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a bar chart of images/s per backbone and engine',
    'skip the Keras and PyTorch rows',
  ).action(async (opts) => {
    const result = await (await suites()).benchBackbones({ ...suiteOutputs(opts), data: opts.data, archs: opts.archs, repeats: opts.repeats });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('fine-tune')
      .description(
        "fine-tuning real backbones at 224² (MobileNetV2, ResNet50; all layers, BatchNormalization frozen): featherstack float32 and bfloat16 vs Keras's recipe and PyTorch",
      )
      .option('--data <dir>', 'override: a directory with train/ class folders of photos')
      .option('--archs <list>', 'comma-separated: mobilenetv2,resnet50', (v: string) => v.split(','))
      .option('--epochs <n>', 'epochs per run (the last is timed)', parse.int('--epochs'), 2)
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3)
      .option(
        '--bn-train',
        'add rows with BatchNormalization trained on batch statistics (featherstack --bn-train vs Keras calling the base without training=False)',
      ),
    'write a bar chart of images/s per backbone and engine',
    'skip the Keras rows',
  ).action(async (opts) => {
    const result = await (await suites()).benchFineTune({
      ...suiteOutputs(opts),
      data: opts.data,
      archs: opts.archs,
      epochs: opts.epochs,
      repeats: opts.repeats,
      bnTrain: opts.bnTrain ?? false,
    });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('pack')
      .description(
        'one epoch at 224² from loose photos, from a pack of their bytes and from a JPEG q90 256 px pack, cold (page cache dropped where allowed) and warm',
      )
      .option('--data <dir>', 'override: a directory of class folders of photos')
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a bar chart of cold images/s per source',
  ).action(async (opts) => {
    const result = await (await suites()).benchPack({ ...suiteOutputs(opts), data: opts.data, repeats: opts.repeats });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('scale')
      .description('listing, packing and one epoch from loose files and from the pack at 10 k, 100 k and 1 M generated images: time and peak RSS per image')
      .option('--sizes <list>', 'comma-separated dataset sizes', (v: string) => v.split(',').map((n) => parse.int('--sizes')(n)), [10000, 100000, 1000000]),
    'write a bar chart of µs per image by size and stage',
  ).action(async (opts) => {
    const result = await (await suites()).benchScale({ ...suiteOutputs(opts), sizes: opts.sizes });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('extraction')
      .description('feature extraction images/s: against decode workers, from the pixel cache, TensorFlow alone (ceiling), Keras (seed)')
      .option('--dataset <name>', 'shipped (2,000 images) | fashion-mnist (60,000)', 'shipped')
      .option('--data <dir>', 'override: a directory of class folders')
      .option('--batch-size <n>', 'batch size', parse.int('--batch-size'), 256)
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a chart of images/s against decode workers',
    'skip the Keras row',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['fashion-mnist', 'shipped']);
    const result = await (await suites()).benchExtraction({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      data: opts.data,
      batchSize: opts.batchSize,
      repeats: opts.repeats,
    });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('head')
      .description('head training rows/s and accuracy: trainHead in memory and streamed, tfjs model.fit (baseline), Keras (seed)')
      .option('--dataset <name>', 'shipped | fashion-mnist', 'shipped')
      .option('--data <dir>', 'override: a directory with train/ and val/ class folders')
      .option('--epochs <n>', 'head epochs per run', parse.int('--epochs'), 10)
      .option('--batch-size <n>', 'batch size', parse.int('--batch-size'), 32)
      .option('--repeats <n>', 'runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a bar chart of rows/s',
    'skip the Keras row',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['fashion-mnist', 'shipped']);
    const result = await (await suites()).benchHead({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      data: opts.data,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      repeats: opts.repeats,
    });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('cluster')
      .description(
        'distributed extraction through the job queue (Redis started for the run): 1 and 2 worker processes vs one process, overhead per shard, a model for 1M and 100M images',
      )
      .option('--dataset <name>', 'shipped (2,000 images, 28²) | photos (2,000 JPEGs, 224² RGB) | fashion-mnist', 'shipped')
      .option('--data <dir>', 'override: a directory of class folders')
      .option('--shard-size <n>', 'images per shard', parse.int('--shard-size'), 250)
      .option('--repeats <n>', 'interleaved runs per row (the median is reported)', parse.int('--repeats'), 3),
    'write a bar chart of images/s',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['shipped', 'photos', 'fashion-mnist']);
    const result = await (await suites()).benchCluster({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      data: opts.data,
      shardSize: opts.shardSize,
      repeats: opts.repeats,
    });
    printResult(opts.json)(result);
  });

  bench
    .command('readme')
    .description('rewrite the performance section of a README (between its bench:start/bench:end markers) from `bench all` results')
    .option('--results <dir>', 'a `bench all --out` directory', 'benchmarks/results/latest')
    .option('--readme <file>', 'the README to update', 'README.md')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      await (await suites()).updateReadme(opts.readme, opts.results);
      if (opts.json) process.stdout.write(`${JSON.stringify({ readme: resolve(opts.readme), results: resolve(opts.results) })}\n`);
      else process.stdout.write(`${opts.readme}: performance section rewritten from ${opts.results}\n`);
    });

  suiteOutputOptions(
    bench
      .command('training')
      .description('base-training starvation: images/s fed by the pipeline (decoding, pixel cache) vs the same batches in memory')
      .option('--dataset <name>', 'shipped | fashion-mnist', 'shipped')
      .option('--epochs <n>', 'measured epochs (median reported)', parse.int('--epochs'), 3),
    'write a bar chart of images/s',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['fashion-mnist', 'shipped']);
    const result = await (await suites()).benchTraining({ ...suiteOutputs(opts), dataset: opts.dataset, epochs: opts.epochs });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('scaling')
      .description(
        'base training images/s for every replicas × TensorFlow threads layout, mixed precision, the eager engine and both allocators (batches in memory)',
      )
      .option('--dataset <name>', 'shipped (28²) | fashion-mnist (28²) | photos (224² RGB)', 'shipped')
      .option('--repeats <n>', 'interleaved runs per row (the median is reported)', parse.int('--repeats'), 3)
      .option('--steps <n>', 'measured training steps per run (default: 100 at 28², 12 at 224²)', parse.int('--steps')),
    'write a bar chart of images/s per row',
    'skip the Keras train_on_batch rows',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['shipped', 'fashion-mnist', 'photos']);
    const result = await (await suites()).benchScaling({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      repeats: opts.repeats,
      ...(opts.steps ? { steps: opts.steps } : {}),
    });
    printResult(opts.json)(result);
  });

  suiteOutputOptions(
    bench
      .command('workflow')
      .description("the seed's stacked workflow end to end, featherstack vs Keras: stage times and validation accuracy")
      .option(
        '--dataset <name>',
        "fashion-mnist (60,000 train / 10,000 val, 28², prepared once) | photos (the seed's 224² RGB: 1,600 / 400 photographs) | shipped",
        'fashion-mnist',
      )
      .option('--data <dir>', 'override: a directory with train/ and val/ class folders')
      .option('--base-epochs <n>', 'base training epochs', parse.int('--base-epochs'), 1)
      .option('--head-epochs <n>', 'head training epochs', parse.int('--head-epochs'), 5)
      .option('--repeats <n>', 'interleaved runs per row (the median is reported)', parse.int('--repeats'), 1),
    'write a bar chart of seconds per stage',
    'skip the Keras run',
  ).action(async (opts) => {
    checkDataset(bench, opts.dataset, ['fashion-mnist', 'photos', 'shipped']);
    const result = await (await suites()).benchWorkflow({
      ...suiteOutputs(opts),
      dataset: opts.dataset,
      data: opts.data,
      baseEpochs: opts.baseEpochs,
      headEpochs: opts.headEpochs,
      repeats: opts.repeats,
    });
    printResult(opts.json)(result);
  });
}
