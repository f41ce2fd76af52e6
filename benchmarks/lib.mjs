// Helpers shared by the benchmark scripts: peers in Python, medians, the machine description.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { SHIPPED_TRAIN } from '@featherstack/fixtures';

const PY_ENV = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' };
let kerasAvailable;

/**
 * Runs peers/<script> with `args` (and `env` added to its environment) and returns its last JSON line as `{ status: 'ok', ... }`;
 * `{ status: 'not run', reason }` when peers are off or Python tensorflow is missing, and
 * `{ status: 'failed', reason }` (the end of its stderr) when the peer itself fails — a suite
 * reports that row instead of losing every row it measured.
 */
export function runPeer(script, args, { enabled = true, env = {} } = {}) {
  if (!enabled) return { status: 'not run', reason: '--no-peers' };
  if (kerasAvailable === undefined) {
    try {
      execFileSync('python3', ['-c', 'import tensorflow, keras'], { stdio: 'ignore', env: PY_ENV });
      kerasAvailable = true;
    } catch {
      kerasAvailable = false;
    }
  }
  if (!kerasAvailable) return { status: 'not run', reason: 'Python tensorflow is not installed (pip install tensorflow-cpu)' };
  try {
    const out = execFileSync('python3', [join(import.meta.dirname, 'peers', script), ...args.map(String)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...PY_ENV, ...env },
    });
    return { status: 'ok', ...JSON.parse(out.trim().split('\n').pop()) };
  } catch (error) {
    const tail = String(error.stderr ?? error.message)
      .trim()
      .split('\n')
      .slice(-3)
      .join(' | ');
    process.stderr.write(`peers/${script} failed (${error.status ?? error.signal ?? 'bad output'}):\n${String(error.stderr ?? error.message).trim()}\n`);
    return { status: 'failed', reason: `peers/${script} exited with ${error.status ?? error.signal ?? 'unreadable output'}: ${tail}` };
  }
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const machine = () => ({ cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version });

export const log = (line) => process.stderr.write(`${line}\n`);

/** parseArgs options of every suite: where its results go. */
/** The options every backbone row process (backbone-row.mjs, finetune-row.mjs) takes, with its check. */
export const BACKBONE_ROW_OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  preprocess: { type: 'string', default: 'none' },
  precision: { type: 'string', default: 'float32' },
};

export function requireModelAndData(values) {
  if (!values.model || !values.data) throw new Error('--model FILE and --data DIR are required');
}

/** The image options of the suites that default to the shipped 28² grayscale subset. */
export const SHIPPED_IMAGE_OPTIONS = {
  data: { type: 'string', default: SHIPPED_TRAIN },
  size: { type: 'string', default: '28' },
  'color-mode': { type: 'string', default: 'grayscale' },
};

export const OUTPUT_OPTIONS = { json: { type: 'string' }, markdown: { type: 'string' }, chart: { type: 'string' } };

/** parseArgs option of the suites with peers. */
export const PEER_OPTION = { 'no-peers': { type: 'boolean', default: false } };

/**
 * Writes a PNG of featherstack's images/s against decode workers, with horizontal reference lines
 * (a ceiling, the pixel cache, peers); references without a value (peers not run) are left out.
 */
export async function writeWorkersChart(file, title, byWorkers, references) {
  const { lineChart, svgToPng } = await import('@featherstack/report');
  const svg = lineChart({
    title,
    xLabel: 'decode workers',
    yLabel: 'images/s',
    integerX: true,
    series: [{ label: 'featherstack', points: byWorkers.map((b) => [b.workers, b.imagesPerSecond]) }],
    references: references.filter((r) => r.value),
  });
  writeFileSync(file, await svgToPng(svg));
}

/**
 * Writes a suite's outputs where its options ask: the JSON result, the markdown table, and a bar
 * chart (PNG) drawn from `chart` ({ title, unit, bars }).
 */
export async function writeSuiteOutputs(values, result, markdown, chart) {
  if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  if (values.markdown) writeFileSync(values.markdown, markdown);
  if (values.chart) {
    const { barChart, svgToPng } = await import('@featherstack/report');
    writeFileSync(values.chart, await svgToPng(barChart(chart)));
  }
}

/** Where the keras.applications backbone files live (written once by Keras: peers/save_backbone.py). */
export const BACKBONES = join(process.env.FEATHERSTACK_CACHE ?? join(homedir(), '.cache', 'featherstack'), 'backbones-224');

/**
 * The backbones the suites measure: each one's preprocess_input mode, as Keras's applications module
 * defines it, and torchvision's name for the same architecture.
 */
export const BACKBONE_ARCHS = {
  mobilenetv2: { preprocess: 'tf', torch: 'mobilenet_v2' },
  resnet50: { preprocess: 'caffe', torch: 'resnet50' },
  efficientnetb0: { preprocess: 'none', torch: 'efficientnet_b0' },
};

/** `--archs`' list, each checked against BACKBONE_ARCHS. */
export function parseArchs(list) {
  const archs = list.split(',').map((a) => a.trim());
  for (const arch of archs) {
    if (!BACKBONE_ARCHS[arch]) throw new Error(`--archs: '${arch}' is not one of ${Object.keys(BACKBONE_ARCHS).join(', ')}`);
  }
  return archs;
}

/** The backbone `arch` at 224² as a .keras file, written once by Keras itself (weights=None, include_top=False, pooling='avg'). */
export function backboneFile(arch) {
  const file = join(BACKBONES, `${arch}.keras`);
  if (!existsSync(file)) {
    mkdirSync(BACKBONES, { recursive: true });
    log(`writing ${file} with Keras (once)`);
    execFileSync('python3', [join(import.meta.dirname, 'peers', 'save_backbone.py'), '--arch', arch, '--size', '224', '--out', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return file;
}

/**
 * One shuffled epoch of `flow` (closed after), timed from `started`: images, seconds and this
 * process's peak RSS and CPU time (a bench row runs in a process of its own).
 */
export async function timedEpoch(flow, started) {
  let images = 0;
  try {
    for await (const batch of flow.epoch(0)) images += batch.size;
  } finally {
    await flow.close();
  }
  return stageResult(images, started);
}

/** A bench stage's result: `images`, seconds since `started`, and this process's peak RSS and CPU time. */
export function stageResult(images, started) {
  const usage = process.resourceUsage();
  return {
    images,
    seconds: (performance.now() - started) / 1000,
    peakRssBytes: usage.maxRSS * 1024,
    userSeconds: usage.userCPUTime / 1e6,
    systemSeconds: usage.systemCPUTime / 1e6,
  };
}
