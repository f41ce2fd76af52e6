#!/usr/bin/env node
import './env.js';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { ColorMode } from '@featherstack/images';
import { Command, InvalidArgumentError } from 'commander';
import { benchAll, benchExtraction, benchHead, benchImages, benchScaling, benchTraining, benchWorkflow, updateReadme } from './bench.js';
import { applyConfig, parseAugmentFlag, readRunConfig } from './config.js';
import { doctor } from './doctor.js';
import { extractStage, trainBaseStage, trainHeadStage } from './stages.js';
import { evaluate } from './evaluate.js';
import { inspect } from './inspect.js';
import { predict } from './predict.js';
import { Progress, useColor } from './progress.js';
import { runWorkflow, SEED_AUGMENT, SHIPPED_DATASET } from './workflow.js';

function int(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, received '${value}'`);
    return n;
  };
}

function augmentFlag(value: string): ReturnType<typeof parseAugmentFlag> {
  try {
    return parseAugmentFlag(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The training engine's options, the same on run, train-base and extract. */
function engineOptions(command: Command): Command {
  return command
    .option('--replicas <n>', 'data-parallel trainer replicas, each a TensorFlow session (default: the thread plan, see doctor; at most the core count)', int('--replicas'))
    .option('--tf-threads <n>', 'TensorFlow intra-op threads per replica (default: the thread plan, see doctor)', int('--tf-threads'))
    .option('--engine <engine>', 'graph (one compiled TensorFlow graph per step, the default where the model compiles) or eager (tfjs ops, one replica)', engineFlag)
    .option('--precision <p>', 'float32 (default) or mixed-bfloat16 (graph engine: layers compute in bfloat16, weights and optimizer stay float32; about 2× faster on CPUs with AVX512_BF16 or AMX)', precisionFlag);
}

/** Those options as the API takes them (absent flags stay absent: the plan decides). */
function engineFrom(opts: { replicas?: number; tfThreads?: number; engine?: 'graph' | 'eager'; precision?: 'float32' | 'mixed-bfloat16' }) {
  return {
    ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
    ...(opts.tfThreads !== undefined ? { tfThreads: opts.tfThreads } : {}),
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.precision ? { precision: opts.precision } : {}),
  };
}

function engineFlag(value: string): 'graph' | 'eager' {
  if (value !== 'graph' && value !== 'eager') throw new InvalidArgumentError(`--engine must be graph or eager, received '${value}'`);
  return value;
}

function precisionFlag(value: string): 'float32' | 'mixed-bfloat16' {
  if (value !== 'float32' && value !== 'mixed-bfloat16') throw new InvalidArgumentError(`--precision must be float32 or mixed-bfloat16, received '${value}'`);
  return value;
}

function size(value: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(value);
  const h = Number(m?.[1]);
  const w = m?.[2] ? Number(m[2]) : h;
  if (!m || h < 1 || w < 1) throw new InvalidArgumentError(`--image-size must be N or HxW of positive integers (e.g. 28 or 224x224), received '${value}'`);
  return [h, w];
}

const program = new Command()
  .name('featherstack')
  .description('Train stacked image models on Node.js: parallel image pipeline → base CNN → Arrow features → head.')
  .version((createRequire(import.meta.url)('../package.json') as { version: string }).version)
  .showHelpAfterError('(see --help for usage)')
  // Usage errors (unknown option, missing or invalid argument) exit with 2, as documented; help with 0.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

const ON_ERROR_HELP = 'raise: stop at the first image that cannot be loaded, naming it; skip: leave such images out and report every one';

engineOptions(program
  .command('run'))
  .description('run the stacked workflow: train the base CNN, extract features to Arrow files, train the head')
  .option('--data <dir>', 'dataset with train/ and val/ class folders', SHIPPED_DATASET)
  .option('--out <dir>', 'output directory for feature files', 'runs/latest')
  .option('--image-size <HxW>', 'target image size', size, [28, 28] as [number, number])
  .option('--color-mode <mode>', 'grayscale | rgb | rgba', colorMode, 'grayscale' as ColorMode)
  .option('--batch-size <n>', 'batch size', int('--batch-size'), 32)
  .option('--base-epochs <n>', 'base training epochs', int('--base-epochs'), 5)
  .option('--head-epochs <n>', 'head training epochs', int('--head-epochs'), 10)
  .option('--workers <n>', 'image decode workers (default: all cores; at most 4 per core)', int('--workers'))
  .option('--seed <n>', 'seed for order, augmentation and weights', int('--seed'), 42)
  .option('--resume', 'continue base training from the checkpoint in <out>/checkpoints/base')
  .option('--no-validate-base', 'skip scoring the base on the validation images after every epoch (the report then has no base validation curves)')
  .option('--tensorboard <dir>', 'write TensorBoard event files for base training')
  .option('--on-error <mode>', ON_ERROR_HELP, onError, 'raise' as const)
  .option(
    '--augment <spec>',
    "augmentation replacing the seed's (rescale=1/255,shearRange=0.2,zoomRange=0.2,horizontalFlip=true): key=value pairs or JSON, e.g. rescale=1/255,rotationRange=10; without rescale pixels stay 0–255 (in training, extraction and predict alike); over a config's augment, key by key",
    augmentFlag,
  )
  .option('--config <file>', 'options from a YAML or JSON file (keys as the flags in camelCase); flags override it')
  .option('--json', 'print one JSON object instead of progress lines')
  .addHelpText(
    'after',
    `
Exit codes: 0 done, 1 failed (the message names the file or option, e.g. an invalid config), 2 bad usage (unknown command or
  option, invalid flag value), 130 interrupted (Ctrl-C; resume with --resume).
Outputs in --out: report.html (curves, confusion matrix, per-class metrics, throughput, augmented samples; PNGs in report/),
  features/*.arrow, model/ (for predict), evaluation.json, history.json, checkpoints/, cache/.
Progress: bars on a terminal (NO_COLOR=1 for no colours), plain lines otherwise, nothing but errors with --json.
Example config (run.yaml):
  data: my/images
  imageSize: [64, 64]
  colorMode: rgb
  baseEpochs: 10
  augment: { shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true, rescale: 0.00392156862745098 }`,
  )
  .action(async (opts, command: Command) => {
    if (opts.config) {
      // The file fills every option not given on the command line.
      const config = await readRunConfig(opts.config);
      Object.assign(opts, applyConfig(opts, config, (key) => command.getOptionValueSource(key) === 'cli'));
    }
    // Ctrl-C stops cleanly: the base checkpoint and the extraction journal stay, and we say how to resume.
    const controller = new AbortController();
    const interrupted = new Error('interrupted (SIGINT)');
    process.once('SIGINT', () => controller.abort(interrupted));
    // Bars on a terminal (base epochs, extractions, head), plain lines elsewhere; see progress.ts.
    const progress = new Progress({ json: opts.json });
    const log = (line: string) => progress.line(line);
    let result: Awaited<ReturnType<typeof runWorkflow>>;
    try {
      result = await runWorkflow({
      signal: controller.signal,
      data: opts.data,
      out: opts.out,
      imageSize: opts.imageSize,
      colorMode: opts.colorMode,
      batchSize: opts.batchSize,
      baseEpochs: opts.baseEpochs,
      headEpochs: opts.headEpochs,
      workers: opts.workers,
      onError: opts.onError,
      ...engineFrom(opts),
      seed: opts.seed,
      resume: opts.resume,
      validateBase: opts.validateBase,
      tensorBoard: opts.tensorboard,
      ...(opts.augment ? { augment: opts.augment } : {}),
      log,
      ...(progress.interactive ? { onBaseBatch: progress.base, onExtractBatch: (split, p) => progress.extract(split)(p) } : {}),
      onHeadEpoch: progress.head,
    });
    } catch (error) {
      progress.stop(); // give the terminal its line and cursor back before the message
      if (error !== interrupted) throw error;
      const out = resolve(opts.out);
      process.stderr.write(
        `featherstack: interrupted. Saved: the base checkpoint after the last finished epoch (${join(out, 'checkpoints', 'base')}), ` +
          `finished feature files and the journal of an interrupted extraction (${join(out, 'features')}), the pixel cache once its epoch completed.\n` +
          `Resume with: featherstack run --resume --out ${opts.out} (and the same options)\n`,
      );
      process.exit(130);
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      const s = result.seconds;
      process.stdout.write(
        `validation accuracy: ${result.val_accuracy.toFixed(4)}\n` +
          `seconds: total ${s.total.toFixed(1)} (setup ${s.setup.toFixed(1)}, base ${s.base_train.toFixed(1)}, extract ${s.extract.toFixed(1)}, head ${s.head_train.toFixed(1)}), then evaluation, model and report ${s.report.toFixed(1)}\n` +
          `report: ${result.report.html}\n`,
      );
    }
  });

program
  .command('doctor')
  .description('report native TensorFlow, cores and sharp/libvips versions')
  .option('--json', 'print JSON')
  .action((opts) => {
    const report = doctor();
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else for (const [k, v] of Object.entries(report)) process.stdout.write(`${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
  });

function onError(value: string): 'raise' | 'skip' {
  if (value !== 'raise' && value !== 'skip') throw new InvalidArgumentError(`--on-error must be raise or skip, received '${value}'`);
  return value;
}

function colorMode(value: string): ColorMode {
  if (!['grayscale', 'rgb', 'rgba'].includes(value)) throw new InvalidArgumentError(`--color-mode must be grayscale, rgb or rgba, received '${value}'`);
  return value as ColorMode;
}

function shard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError(`--shard must be i/n with 0 ≤ i < n (e.g. 0/4), received '${value}'`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

function recurrentHead(value: string): { kind: 'gru' | 'lstm'; units: number } {
  const m = /^(gru|lstm):(\d+)$/.exec(value);
  if (!m || Number(m[2]) < 1) throw new InvalidArgumentError(`--recurrent must be gru:UNITS or lstm:UNITS (e.g. gru:32), received '${value}'`);
  return { kind: m[1] as 'gru' | 'lstm', units: Number(m[2]) };
}

/** Exits with usage status 2 unless --dataset is one of `choices`. */
function checkDataset(value: string, choices: string[]): void {
  if (!choices.includes(value)) program.error(`--dataset must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, received '${value}'`, { exitCode: 2 });
}

const printResult = (json: boolean | undefined) => (result: unknown) => process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);

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

engineOptions(program
  .command('train-base'))
  .description('train the base CNN on class folders and save it (out/base/model.json, out/base-history.json)')
  .requiredOption('--data <dir>', 'training images, one subdirectory per class')
  .option('--validation <dir>', 'validation images (not augmented), evaluated every epoch')
  .option('--out <dir>', 'output directory', 'runs/base')
  .option('--image-size <HxW>', 'target image size', size, [28, 28] as [number, number])
  .option('--color-mode <mode>', 'grayscale | rgb | rgba', colorMode, 'grayscale' as ColorMode)
  .option('--batch-size <n>', 'batch size', int('--batch-size'), 32)
  .option('--epochs <n>', 'epochs', int('--epochs'), 5)
  .option('--patience <n>', 'early stopping on validation loss (needs --validation)', int('--patience'))
  .option('--seed <n>', 'seed', int('--seed'), 42)
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
      augment: SEED_AUGMENT,
      ...(opts.patience !== undefined ? { patience: opts.patience } : {}),
      ...engineFrom(opts),
      worker: opts.worker ?? false,
      log: opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
    });
    printResult(opts.json)(result);
  });

engineOptions(program
  .command('extract'))
  .description("extract a saved base's features of class folders into an Arrow file")
  .requiredOption('--model <file>', 'the base: model.json (from train-base, or any tfjs layers model with a "features" layer)')
  .requiredOption('--data <dir>', 'images, one subdirectory per class')
  .requiredOption('--out <file>', 'the feature file to write (.arrow)')
  .option('--image-size <HxW>', 'target image size', size, [28, 28] as [number, number])
  .option('--color-mode <mode>', 'grayscale | rgb | rgba', colorMode, 'grayscale' as ColorMode)
  .option('--batch-size <n>', 'batch size', int('--batch-size'), 256)
  .option('--shard <i/n>', 'extract only shard i of n (sample index mod n = i)', shard)
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

program
  .command('train-head')
  .description('train the head from feature files and save it with its evaluation (out/head/model.json, out/head-evaluation.json)')
  .requiredOption('--train <file|dir>', 'training feature file, or a directory of shard files')
  .requiredOption('--val <file>', 'validation feature file')
  .option('--out <dir>', 'output directory', 'runs/head')
  .option('--units <list>', 'hidden dense layers, comma-separated (empty for none)', (v: string) => (v === '' ? [] : v.split(',').map((u) => int('--units')(u))), [128])
  .option('--epochs <n>', 'epochs', int('--epochs'), 10)
  .option('--patience <n>', 'early stopping on validation loss', int('--patience'))
  .option('--stream <rows>', 'read the training files batch by batch through a shuffle buffer of this many rows', int('--stream'))
  .option('--recurrent <kind:units>', 'a GRU or LSTM head over features declared as sequences (gru:32)', recurrentHead)
  .option('--seed <n>', 'seed', int('--seed'), 7)
  .option('--json', 'print JSON')
  .action(async (opts) => {
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
        onEpochEnd: progress.head,
      });
    } finally {
      progress.stop();
    }
    printResult(opts.json)(result);
  });

program
  .command('predict')
  .description('classify images (files or directories) with a stacked model saved by `featherstack run`')
  .argument('<images...>', 'image files or directories')
  .option('--model <dir>', 'stacked model directory', 'runs/latest/model')
  .option('--top <n>', 'classes to report per image', int('--top'), 3)
  .option('--workers <n>', 'image decode workers (default: all cores)', int('--workers'))
  .option('--on-error <mode>', ON_ERROR_HELP, onError, 'raise' as const)
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

program
  .command('evaluate')
  .description('evaluate a stacked model on a directory of class folders: accuracy, top-k, per-class metrics, confusion matrix')
  .requiredOption('--data <dir>', 'images in one subdirectory per class')
  .option('--model <dir>', 'stacked model directory', 'runs/latest/model')
  .option('--workers <n>', 'image decode workers (default: all cores)', int('--workers'))
  .option('--on-error <mode>', ON_ERROR_HELP, onError, 'raise' as const)
  .option('--json', 'print the whole evaluation as JSON')
  .action(async (opts) => {
    const report = await evaluate({ model: opts.model, data: opts.data, workers: opts.workers, onError: opts.onError });
    for (const s of report.skipped) process.stderr.write(`featherstack: skipped ${s.path}: ${s.reason}\n`);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    process.stdout.write(`samples ${report.samples}, accuracy ${report.accuracy.toFixed(4)}, ${Object.entries(report.topK).map(([k, v]) => `top-${k} ${v.toFixed(4)}`).join(', ')}, macro F1 ${report.macro.f1.toFixed(4)}\n`);
    for (const m of report.perClass) process.stdout.write(`  ${m.name.padEnd(16)} precision ${m.precision.toFixed(3)}  recall ${m.recall.toFixed(3)}  F1 ${m.f1.toFixed(3)}  (${m.support})\n`);
  });

program
  .command('inspect')
  .description('summarise an Arrow feature file or pixel cache: rows, schema, metadata, class balance')
  .argument('<file>', 'an Arrow IPC file')
  .option('--json', 'print JSON')
  .action(async (file: string, opts) => {
    const report = await inspect(file);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    process.stdout.write(`${report.path}: ${report.kind}, ${report.rows} rows in ${report.recordBatches} record batches\n`);
    for (const f of report.schema) process.stdout.write(`  ${f.name}: ${f.type}${f.nullable ? ' (nullable)' : ''}\n`);
    for (const [k, v] of Object.entries(report.metadata)) process.stdout.write(`  ${k} = ${v.length > 100 ? `${v.slice(0, 97)}…` : v}\n`);
    if (report.classBalance) for (const [c, n] of Object.entries(report.classBalance)) process.stdout.write(`  class ${c}: ${n}\n`);
    if (report.failedSamples !== undefined) process.stdout.write(`  failed samples: ${report.failedSamples}\n`);
  });

const bench = program.command('bench').description('run a benchmark suite (from a source checkout); peer rows need Python tensorflow');
suiteOutputOptions(
  bench
    .command('images')
    .description('image pipeline images/s: raw ceiling, 1…cores workers, fastDecode, pixel cache, Keras ImageDataGenerator, tf.data')
    .option('--dataset <name>', 'photos (2,000 JPEGs, 224², from Debian wallpapers) | fashion-mnist (60,000, 28² grayscale) | shipped', 'photos')
    .option('--data <dir>', "override the dataset's directory")
    .option('--size <n>', 'square target size (default: 224 for photos, 28 otherwise)', int('--size'))
    .option('--epochs <n>', 'timed epochs per run', int('--epochs'), 1)
    .option('--repeats <n>', 'runs per row (the median is reported)', int('--repeats'), 3),
  'write a chart of images/s against worker count',
  'skip the Keras and tf.data rows',
).action(async (opts) => {
  checkDataset(opts.dataset, ['photos', 'fashion-mnist', 'shipped']);
  const result = await benchImages({ ...suiteOutputs(opts), dataset: opts.dataset, data: opts.data, size: opts.size, epochs: opts.epochs, repeats: opts.repeats });
  printResult(opts.json)(result);
});

bench
  .command('all')
  .description('every suite in turn (images, training, extraction, head, workflow) into one directory: JSON, markdown and charts per suite, and summary.md')
  .option('--dataset <name>', 'photos (images at 224², workflow on full Fashion-MNIST, the rest on the shipped subset) | fashion-mnist | shipped', 'photos')
  .option('--out <dir>', 'results directory', 'benchmarks/results/latest')
  .option('--repeats <n>', 'runs per row (the median is reported)', int('--repeats'), 3)
  .option('--no-peers', 'skip the Keras and tf.data rows')
  .option('--json', 'print the results as JSON')
  .action(async (opts) => {
    checkDataset(opts.dataset, ['photos', 'fashion-mnist', 'shipped']);
    const result = await benchAll({ dataset: opts.dataset, out: opts.out, peers: opts.peers, repeats: opts.repeats, log: (line) => process.stderr.write(`${line}\n`) });
    process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `results in ${opts.out} (summary: ${result.summary})\n`);
  });

suiteOutputOptions(
  bench
    .command('extraction')
    .description('feature extraction images/s: against decode workers, from the pixel cache, TensorFlow alone (ceiling), Keras (seed)')
    .option('--dataset <name>', 'shipped (2,000 images) | fashion-mnist (60,000)', 'shipped')
    .option('--data <dir>', 'override: a directory of class folders')
    .option('--batch-size <n>', 'batch size', int('--batch-size'), 256)
    .option('--repeats <n>', 'runs per row (the median is reported)', int('--repeats'), 3),
  'write a chart of images/s against decode workers',
  'skip the Keras row',
).action(async (opts) => {
  checkDataset(opts.dataset, ['fashion-mnist', 'shipped']);
  const result = await benchExtraction({ ...suiteOutputs(opts), dataset: opts.dataset, data: opts.data, batchSize: opts.batchSize, repeats: opts.repeats });
  printResult(opts.json)(result);
});

suiteOutputOptions(
  bench
    .command('head')
    .description('head training rows/s and accuracy: trainHead in memory and streamed, tfjs model.fit (baseline), Keras (seed)')
    .option('--dataset <name>', 'shipped | fashion-mnist', 'shipped')
    .option('--data <dir>', 'override: a directory with train/ and val/ class folders')
    .option('--epochs <n>', 'head epochs per run', int('--epochs'), 10)
    .option('--batch-size <n>', 'batch size', int('--batch-size'), 32)
    .option('--repeats <n>', 'runs per row (the median is reported)', int('--repeats'), 3),
  'write a bar chart of rows/s',
  'skip the Keras row',
).action(async (opts) => {
  checkDataset(opts.dataset, ['fashion-mnist', 'shipped']);
  const result = await benchHead({ ...suiteOutputs(opts), dataset: opts.dataset, data: opts.data, epochs: opts.epochs, batchSize: opts.batchSize, repeats: opts.repeats });
  printResult(opts.json)(result);
});

bench
  .command('readme')
  .description("rewrite the performance section of a README (between its bench:start/bench:end markers) from `bench all` results")
  .option('--results <dir>', 'a `bench all --out` directory', 'benchmarks/results/latest')
  .option('--readme <file>', 'the README to update', 'README.md')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    await updateReadme(opts.readme, opts.results);
    if (opts.json) process.stdout.write(`${JSON.stringify({ readme: resolve(opts.readme), results: resolve(opts.results) })}\n`);
    else process.stdout.write(`${opts.readme}: performance section rewritten from ${opts.results}\n`);
  });

suiteOutputOptions(
  bench
    .command('training')
    .description('base-training starvation: images/s fed by the pipeline (decoding, pixel cache) vs the same batches in memory')
    .option('--dataset <name>', 'shipped | fashion-mnist', 'shipped')
    .option('--epochs <n>', 'measured epochs (median reported)', int('--epochs'), 3),
  'write a bar chart of images/s',
).action(async (opts) => {
  checkDataset(opts.dataset, ['fashion-mnist', 'shipped']);
  const result = await benchTraining({ ...suiteOutputs(opts), dataset: opts.dataset, epochs: opts.epochs });
  printResult(opts.json)(result);
});

suiteOutputOptions(
  bench
    .command('scaling')
    .description('base training images/s for every replicas × TensorFlow threads layout, mixed precision, the eager engine and both allocators (batches in memory)')
    .option('--dataset <name>', "shipped (28²) | fashion-mnist (28²) | photos (224² RGB)", 'shipped')
    .option('--repeats <n>', 'interleaved runs per row (the median is reported)', int('--repeats'), 3)
    .option('--steps <n>', 'measured training steps per run (default: 100 at 28², 12 at 224²)', int('--steps')),
  'write a bar chart of images/s per row',
  "skip the Keras train_on_batch rows",
).action(async (opts) => {
  checkDataset(opts.dataset, ['shipped', 'fashion-mnist', 'photos']);
  const result = await benchScaling({ ...suiteOutputs(opts), dataset: opts.dataset, repeats: opts.repeats, ...(opts.steps ? { steps: opts.steps } : {}) });
  printResult(opts.json)(result);
});

suiteOutputOptions(
  bench
    .command('workflow')
    .description("the seed's stacked workflow end to end, featherstack vs Keras: stage times and validation accuracy")
    .option('--dataset <name>', "fashion-mnist (60,000 train / 10,000 val, 28², prepared once) | photos (the seed's 224² RGB: 1,600 / 400 photographs) | shipped", 'fashion-mnist')
    .option('--data <dir>', 'override: a directory with train/ and val/ class folders')
    .option('--base-epochs <n>', 'base training epochs', int('--base-epochs'), 1)
    .option('--head-epochs <n>', 'head training epochs', int('--head-epochs'), 5)
    .option('--repeats <n>', 'interleaved runs per row (the median is reported)', int('--repeats'), 1),
  'write a bar chart of seconds per stage',
  'skip the Keras run',
).action(async (opts) => {
  checkDataset(opts.dataset, ['fashion-mnist', 'photos', 'shipped']);
  const result = await benchWorkflow({ ...suiteOutputs(opts), dataset: opts.dataset, data: opts.data, baseEpochs: opts.baseEpochs, headEpochs: opts.headEpochs, repeats: opts.repeats });
  printResult(opts.json)(result);
});

program.parseAsync().catch((error: Error) => {
  const prefix = useColor(process.stderr) ? '\u001b[31mfeatherstack:\u001b[0m' : 'featherstack:';
  // An image that cannot be loaded stops a command under --on-error raise (the default): say how to go on without it.
  const hint = (error as { code?: string }).code === 'FEATHERSTACK_IMAGE_DECODE' ? ' (--on-error skip leaves such images out and reports each one)' : '';
  process.stderr.write(`${prefix} ${error.message}${hint}\n`);
  process.exit(1);
});
