/**
 * The benchmark suites as functions, behind `featherstack bench <suite>` (a source checkout): each
 * runs its script in this directory, preparing its dataset on first use under the featherstack
 * cache. Types: suites.d.mts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
export const BENCHMARKS = fileURLToPath(new URL('./', import.meta.url));
const CACHE = process.env.FEATHERSTACK_CACHE ?? join(homedir(), '.cache', 'featherstack');
function run(script, args, log) {
  if (!existsSync(join(BENCHMARKS, script))) {
    throw new Error(`featherstack bench runs from a source checkout: ${join(BENCHMARKS, script)} does not exist`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(BENCHMARKS, script), ...args], { cwd: BENCHMARKS, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      for (const line of d.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with code ${code}`))));
  });
}
/** The dataset directory, prepared on first use. */
async function prepare(dataset, log) {
  if (dataset === 'shipped') return { dir: join(SHIPPED_DATASET, 'train'), size: 28, colorMode: 'grayscale' };
  if (dataset === 'fashion-mnist') {
    const dir = join(CACHE, 'datasets', 'fashion-mnist');
    if (!existsSync(join(dir, '.complete'))) {
      log(`preparing full Fashion-MNIST in ${dir} (once)`);
      await run('datasets/fashion-mnist.mjs', ['--out', dir], log);
    }
    return { dir: join(dir, 'train'), size: 28, colorMode: 'grayscale' };
  }
  const dir = join(CACHE, 'datasets', 'photos-2000');
  if (!existsSync(join(dir, '.complete'))) {
    log(`preparing the 2,000-photo corpus in ${dir} (once)`);
    await run('datasets/photos.mjs', ['--out', dir, '--count', '2000', '--marker'], log);
  }
  return { dir, size: 224, colorMode: 'rgb' };
}
function outputArgs(options) {
  const args = [];
  if (options.peers === false) args.push('--no-peers');
  if (options.json) args.push('--json', resolve(options.json));
  if (options.markdown) args.push('--markdown', resolve(options.markdown));
  if (options.chart) args.push('--chart', resolve(options.chart));
  return args;
}
async function suite(script, args, options, log) {
  const out = await run(script, [...args, ...outputArgs(options)], log);
  const last = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`benchmarks/${script} ended without a JSON result line (last line: ${JSON.stringify(last.slice(0, 200))})`);
  }
}
/** Runs benchmarks/images.mjs; returns its JSON result. */
export async function benchImages(options) {
  const prepared = await prepare(options.dataset, options.log);
  // The script runs in benchmarks/: every path handed to it must be absolute.
  const args = [
    '--data',
    resolve(options.data ?? prepared.dir),
    '--size',
    String(options.size ?? prepared.size),
    '--color-mode',
    prepared.colorMode,
    '--epochs',
    String(options.epochs),
    '--repeats',
    String(options.repeats),
  ];
  return suite('images.mjs', args, options, options.log);
}
/** The 224² workflow corpus: 2,000 photographs as train/ (4 of 5) and val/ (1 of 5), prepared once. */
async function preparePhotoWorkflow(log) {
  const dir = join(CACHE, 'datasets', 'photos-workflow');
  if (!existsSync(join(dir, '.complete'))) {
    log(`preparing the 2,000-photo workflow corpus (train/ and val/) in ${dir} (once)`);
    await run('datasets/photos.mjs', ['--out', dir, '--count', '2000', '--val-every', '5', '--marker'], log);
  }
  return dir;
}
/**
 * Runs benchmarks/backbones.mjs: MobileNetV2, ResNet50 and EfficientNetB0 at 224² — featherstack
 * (float32, mixed-bfloat16) against Keras (ImageDataGenerator, tf.data) and PyTorch, and `run --base`
 * against Keras's transfer recipe — on a 500-photo corpus (400 train / 100 val: a ResNet50 row on
 * 2 cores takes half a minute).
 */
/** `options.data`, or the 500-photo backbone corpus (400 train / 100 val), prepared once. */
async function backboneCorpus(options) {
  const dir = options.data ?? join(CACHE, 'datasets', 'photos-backbones');
  if (!options.data && !existsSync(join(dir, '.complete'))) {
    options.log(`preparing the 500-photo backbone corpus (train/ and val/) in ${dir} (once)`);
    await run('datasets/photos.mjs', ['--out', dir, '--count', '500', '--val-every', '5', '--marker'], options.log);
  }
  return dir;
}
export async function benchBackbones(options) {
  const dir = await backboneCorpus(options);
  const args = ['--data', resolve(dir), '--repeats', String(options.repeats), '--head-epochs', String(options.headEpochs ?? 5)];
  if (options.archs) args.push('--archs', options.archs.join(','));
  return suite('backbones.mjs', args, options, options.log);
}
/**
 * Runs benchmarks/finetune.mjs: fine-tuning MobileNetV2 and ResNet50 at 224² (all layers,
 * BatchNormalization frozen) — featherstack float32 and mixed-bfloat16 against Keras's recipe — on
 * the backbone corpus's 400 training photos; with `bnTrain`, rows with BatchNormalization training too.
 */
export async function benchFineTune(options) {
  const dir = await backboneCorpus(options);
  const args = ['--data', resolve(dir), '--repeats', String(options.repeats), '--epochs', String(options.epochs ?? 2)];
  if (options.archs) args.push('--archs', options.archs.join(','));
  if (options.bnTrain) args.push('--bn-train');
  return suite('finetune.mjs', args, options, options.log);
}
/**
 * Runs benchmarks/workflow.mjs (featherstack run, float32 and mixed-bfloat16, vs the seed's Keras
 * workflow as users run it and with the BFC allocator); returns its JSON result.
 */
export async function benchWorkflow(options) {
  const photos = options.dataset === 'photos';
  const dir = options.data ?? (photos ? await preparePhotoWorkflow(options.log) : join((await prepare(options.dataset, options.log)).dir, '..'));
  const args = [
    '--data',
    resolve(dir),
    '--base-epochs',
    String(options.baseEpochs),
    '--head-epochs',
    String(options.headEpochs),
    '--repeats',
    String(options.repeats),
    '--mixed',
  ];
  if (photos) args.push('--image-size', '224', '--color-mode', 'rgb');
  return suite('workflow.mjs', args, options, options.log);
}
/** Runs benchmarks/training.mjs (base training fed by the pipeline vs from memory); returns its JSON result. */
export async function benchTraining(options) {
  const prepared = await prepare(options.dataset === 'photos' ? 'shipped' : options.dataset, options.log);
  return suite('training.mjs', ['--data', resolve(prepared.dir), '--epochs', String(options.epochs)], options, options.log);
}
/**
 * Runs benchmarks/scaling.mjs: the training step's images/s for every replicas × threads layout,
 * mixed precision, the eager engine and both allocators, at 28² (and 224² for photos).
 */
export async function benchScaling(options) {
  const photos = options.dataset === 'photos';
  const dir = photos ? join(await preparePhotoWorkflow(options.log), 'train') : (await prepare(options.dataset, options.log)).dir;
  const args = ['--data', resolve(dir), '--repeats', String(options.repeats)];
  // Steps per row: enough for a ±5 % median of step times (a 224² step takes ~0.1–0.5 s, a 28² one ~3–15 ms).
  args.push('--steps', String(options.steps ?? (photos ? 12 : 100)));
  if (photos) args.push('--size', '224', '--color-mode', 'rgb');
  return suite('scaling.mjs', args, options, options.log);
}
/**
 * Runs benchmarks/extraction.mjs (extractFeatures against decode workers, pixel cache, ceiling, Keras).
 *
 * @example
 * await benchExtraction({ dataset: 'shipped', batchSize: 256, repeats: 3, json: 'extraction.json', log: console.error });
 */
export async function benchExtraction(options) {
  const dir = options.data ?? (await prepare(options.dataset, options.log)).dir;
  return suite(
    'extraction.mjs',
    ['--data', resolve(dir), '--batch-size', String(options.batchSize), '--repeats', String(options.repeats)],
    options,
    options.log,
  );
}
/**
 * Runs benchmarks/head.mjs (trainHead in memory and streamed, tfjs model.fit, Keras).
 *
 * @example
 * await benchHead({ dataset: 'shipped', epochs: 10, batchSize: 32, repeats: 3, peers: false, log: console.error });
 */
export async function benchHead(options) {
  const dir = options.data ?? join((await prepare(options.dataset, options.log)).dir, '..');
  const args = ['--data', resolve(dir), '--epochs', String(options.epochs), '--batch-size', String(options.batchSize), '--repeats', String(options.repeats)];
  return suite('head.mjs', args, options, options.log);
}
/**
 * Runs benchmarks/pack.mjs: one epoch at 224² from loose photos, a pack of their bytes, a JPEG
 * q90 256 px pack, WebDataset tars and the pixel cache in each format (raw, png, jpeg:90), cold
 * (page cache dropped where allowed) and warm.
 *
 * @example
 * await benchPack({ repeats: 3, log: console.error });
 */
export async function benchPack(options) {
  const dir = options.data ?? (await prepare('photos', options.log)).dir;
  return suite('pack.mjs', ['--data', resolve(dir), '--repeats', String(options.repeats)], options, options.log);
}
/**
 * Runs benchmarks/scale.mjs: listing, packing and one epoch from loose files and from the pack at
 * each dataset size (generated once under the featherstack cache).
 *
 * @example
 * await benchScale({ sizes: [10000, 100000], log: console.error });
 */
export async function benchScale(options) {
  return suite('scale.mjs', ['--sizes', (options.sizes ?? [10000, 100000, 1000000]).join(',')], options, options.log);
}
/** The suites of `bench all`, in order: name, title, what its chart shows, the command that runs it alone. */
export const SUITES = [
  ['images', 'Image pipeline', 'images/s against decode workers', 'bench images'],
  ['training', 'Base training starvation', 'images/s by what feeds the base', 'bench training'],
  ['scaling', 'Base training on the cores, 28²', 'images/s per engine and layout', 'bench scaling'],
  ['scaling-224', 'Base training on the cores, 224² RGB', 'images/s per engine and layout', 'bench scaling --dataset photos'],
  ['extraction', 'Feature extraction', 'images/s against decode workers', 'bench extraction'],
  ['head', 'Head training', 'rows/s per trainer', 'bench head'],
  ['workflow', 'Stacked workflow, 28² Fashion-MNIST', 'seconds per stage, featherstack and Keras', 'bench workflow'],
  ['workflow-224', "Stacked workflow, the seed's 224² RGB configuration", 'seconds per stage, featherstack and Keras', 'bench workflow --dataset photos'],
  // Optional: `bench all --dataset shipped` (the quick run) leaves it out.
  ['backbones', 'Real backbones at 224² (MobileNetV2, ResNet50, EfficientNetB0)', 'images/s per backbone and engine', 'bench backbones', true],
  ['fine-tune', 'Fine-tuning real backbones at 224² (MobileNetV2, ResNet50)', 'images/s per backbone and engine', 'bench fine-tune', true],
  ['pack', 'Loose files against packs at 224², cold and warm page cache', 'images/s per source (cold)', 'bench pack', true],
  ['scale', 'Million-image scale: listing, packing, one epoch (10 k – 1 M images)', 'µs per image by dataset size', 'bench scale', true],
];
/**
 * Every suite in turn into `out`: per suite a JSON file, a markdown table and a PNG chart, plus
 * summary.md with every table — the README's performance
 * section is this file (see `featherstack bench readme`).
 */
export async function benchAll(options) {
  const out = resolve(options.out);
  await mkdir(out, { recursive: true });
  const files = (name) => ({ json: join(out, `${name}.json`), markdown: join(out, `${name}.md`), chart: join(out, `${name}.png`) });
  const small = options.dataset === 'photos' ? 'shipped' : options.dataset;
  const common = { peers: options.peers, repeats: options.repeats, log: options.log };
  const results = {};
  results.images = await benchImages({ ...common, ...files('images'), dataset: options.dataset, epochs: 1 });
  // Epoch-to-epoch noise here is ±15 %: a median of at least five, unless a quick single repeat was asked for.
  results.training = await benchTraining({
    ...files('training'),
    dataset: small,
    epochs: options.repeats === 1 ? 1 : Math.max(5, options.repeats),
    log: options.log,
  });
  results.scaling = await benchScaling({ ...files('scaling'), peers: options.peers, dataset: small, repeats: options.repeats, log: options.log });
  results['scaling-224'] = await benchScaling({
    ...files('scaling-224'),
    peers: options.peers,
    dataset: options.dataset === 'shipped' ? 'shipped' : 'photos',
    repeats: options.repeats,
    ...(options.dataset === 'shipped' ? { steps: 10 } : {}),
    log: options.log,
  });
  results.extraction = await benchExtraction({ ...common, ...files('extraction'), dataset: small, batchSize: 256 });
  results.head = await benchHead({ ...common, ...files('head'), dataset: small, epochs: small === 'shipped' ? 10 : 5, batchSize: 32 });
  // The workflow's headline comparison runs on full Fashion-MNIST unless the shipped subset was asked for.
  results.workflow = await benchWorkflow({
    ...common,
    ...files('workflow'),
    dataset: options.dataset === 'shipped' ? 'shipped' : 'fashion-mnist',
    baseEpochs: 1,
    headEpochs: 5,
  });
  // The seed's own configuration: 224² RGB photographs (the shipped subset stands in for a quick run).
  results['workflow-224'] = await benchWorkflow({
    ...common,
    ...files('workflow-224'),
    dataset: options.dataset === 'shipped' ? 'shipped' : 'photos',
    baseEpochs: 1,
    headEpochs: 5,
  });
  if (options.dataset !== 'shipped') results.backbones = await benchBackbones({ ...common, ...files('backbones') });
  if (options.dataset !== 'shipped') results['fine-tune'] = await benchFineTune({ ...common, ...files('fine-tune') });
  if (options.dataset !== 'shipped') results.pack = await benchPack({ ...common, ...files('pack') });
  if (options.dataset !== 'shipped') results.scale = await benchScale({ log: options.log, ...files('scale') });
  const summary = join(out, 'summary.md');
  await writeFile(summary, await summaryMarkdown(out, '.'));
  return { ...results, summary };
}
/**
 * The markdown of every suite's table in `dir` (written by `bench all`), with chart links
 * relative to `base` (the directory of the document that will hold it).
 *
 * @example
 * const md = await summaryMarkdown('benchmarks/results/latest', 'benchmarks/results/latest');
 */
export async function summaryMarkdown(dir, base) {
  const sections = [];
  for (const [name, title, chart, command, optional] of SUITES) {
    const md = join(dir, `${name}.md`);
    if (optional && !existsSync(md)) continue;
    if (!existsSync(md)) throw new Error(`${md} does not exist: run \`featherstack bench all --out ${dir}\` first`);
    const link = `${base === '.' ? '' : `${base}/`}${name}.png`;
    sections.push(`### ${title} (\`featherstack ${command}\`)\n\n${(await readFile(md, 'utf8')).trim()}\n\n![${title}: ${chart}](${link})\n`);
  }
  return `${sections.join('\n')}`;
}
export const README_START = '<!-- bench:start (generated by `featherstack bench readme`; edits between these lines are overwritten) -->';
export const README_END = '<!-- bench:end -->';
/**
 * Replaces the performance section of `readme` (between README_START and README_END) with the
 * suite results in `dir`. Refuses a README without exactly one pair of markers.
 *
 * @example
 * await updateReadme('README.md', 'benchmarks/results/latest');
 */
export async function updateReadme(readme, dir) {
  const text = await readFile(readme, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start || text.indexOf(README_START, start + 1) >= 0) {
    throw new Error(`${readme}: needs one line '${README_START}' followed by one line '${README_END}' around the generated performance section`);
  }
  const rel = relative(dirname(resolve(readme)), resolve(dir)) || '.';
  const body = await summaryMarkdown(resolve(dir), rel);
  await writeFile(readme, `${text.slice(0, start + README_START.length)}\n\n${body}\n${text.slice(end)}`);
}

/**
 * Runs benchmarks/cluster.mjs: distributed extraction through the job queue (Redis started for the
 * run) with 1 and 2 worker processes against plain extraction, the queue's overhead per shard, and
 * a model of 1M and 100M images on N machines.
 */
export async function benchCluster(options) {
  const prepared = await prepare(options.dataset, options.log);
  const args = ['--data', resolve(options.data ?? prepared.dir), '--size', String(prepared.size), '--color-mode', prepared.colorMode];
  args.push('--repeats', String(options.repeats), '--shard-size', String(options.shardSize));
  return suite('cluster.mjs', args, options, options.log);
}
