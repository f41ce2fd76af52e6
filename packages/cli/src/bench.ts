/**
 * `featherstack bench <suite>`: runs the scripts in the repository's benchmarks/ directory (a
 * source checkout), preparing their datasets on first use under the featherstack cache.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHIPPED_DATASET } from './workflow.js';

export const BENCHMARKS = fileURLToPath(new URL('../../../benchmarks/', import.meta.url));
const CACHE = process.env.FEATHERSTACK_CACHE ?? join(homedir(), '.cache', 'featherstack');

export type BenchDataset = 'photos' | 'fashion-mnist' | 'shipped';

export interface ImageBenchOptions {
  dataset: BenchDataset;
  /** Overrides the dataset's directory. */
  data?: string;
  size?: number;
  epochs: number;
  repeats: number;
  peers: boolean;
  json?: string;
  markdown?: string;
  /** PNG chart of images/s against worker count. */
  chart?: string;
  log: (line: string) => void;
}

function run(script: string, args: string[], log: (line: string) => void): Promise<string> {
  if (!existsSync(join(BENCHMARKS, script))) {
    throw new Error(`featherstack bench runs from a source checkout: ${join(BENCHMARKS, script)} does not exist`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(BENCHMARKS, script), ...args], { cwd: BENCHMARKS, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with code ${code}`))));
  });
}

/** The dataset directory, prepared on first use. */
async function prepare(dataset: BenchDataset, log: (line: string) => void): Promise<{ dir: string; size: number; colorMode: string }> {
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

/** Runs benchmarks/images.mjs; returns its JSON result. */
export async function benchImages(options: ImageBenchOptions): Promise<unknown> {
  const prepared = await prepare(options.dataset, options.log);
  // The script runs in benchmarks/: every path handed to it must be absolute.
  const args = [
    '--data', resolve(options.data ?? prepared.dir),
    '--size', String(options.size ?? prepared.size),
    '--color-mode', prepared.colorMode,
    '--epochs', String(options.epochs),
    '--repeats', String(options.repeats),
  ];
  if (!options.peers) args.push('--no-peers');
  if (options.json) args.push('--json', resolve(options.json));
  if (options.markdown) args.push('--markdown', resolve(options.markdown));
  if (options.chart) args.push('--chart', resolve(options.chart));
  const out = await run('images.mjs', args, options.log);
  return JSON.parse(out.trim().split('\n').pop()!);
}

export interface WorkflowBenchOptions {
  dataset: 'fashion-mnist' | 'shipped';
  data?: string;
  baseEpochs: number;
  headEpochs: number;
  peers: boolean;
  json?: string;
  markdown?: string;
  log: (line: string) => void;
}

/** Runs benchmarks/workflow.mjs (featherstack run vs the seed's Keras workflow); returns its JSON result. */
export async function benchWorkflow(options: WorkflowBenchOptions): Promise<unknown> {
  const dir = options.data ?? join((await prepare(options.dataset, options.log)).dir, '..');
  const args = ['--data', resolve(dir), '--base-epochs', String(options.baseEpochs), '--head-epochs', String(options.headEpochs)];
  if (!options.peers) args.push('--no-peers');
  if (options.json) args.push('--json', resolve(options.json));
  if (options.markdown) args.push('--markdown', resolve(options.markdown));
  const out = await run('workflow.mjs', args, options.log);
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** Runs benchmarks/training.mjs (base training fed by the pipeline vs from memory); returns its JSON result. */
export async function benchTraining(options: { dataset: BenchDataset; epochs: number; json?: string; markdown?: string; log: (line: string) => void }): Promise<unknown> {
  const prepared = await prepare(options.dataset === 'photos' ? 'shipped' : options.dataset, options.log);
  const args = ['--data', resolve(prepared.dir), '--epochs', String(options.epochs)];
  if (options.json) args.push('--json', resolve(options.json));
  if (options.markdown) args.push('--markdown', resolve(options.markdown));
  const out = await run('training.mjs', args, options.log);
  return JSON.parse(out.trim().split('\n').pop()!);
}

/**
 * Every suite in turn — images, training, workflow — into `out`: one JSON, markdown table (and
 * for images a PNG chart) per suite, plus summary.md with all the tables.
 */
export async function benchAll(options: { dataset: BenchDataset; out: string; peers: boolean; repeats: number; log: (line: string) => void }): Promise<Record<string, unknown>> {
  const out = resolve(options.out);
  await mkdir(out, { recursive: true });
  const path = (name: string, ext: string) => join(out, `${name}.${ext}`);
  const images = await benchImages({
    dataset: options.dataset,
    epochs: 1,
    repeats: options.repeats,
    peers: options.peers,
    json: path('images', 'json'),
    markdown: path('images', 'md'),
    chart: path('images-workers', 'png'),
    log: options.log,
  });
  const small = options.dataset === 'photos' ? 'shipped' : options.dataset;
  const training = await benchTraining({ dataset: small, epochs: Math.max(1, options.repeats), json: path('training', 'json'), markdown: path('training', 'md'), log: options.log });
  const workflow = await benchWorkflow({
    dataset: small === 'shipped' ? 'shipped' : 'fashion-mnist',
    baseEpochs: 1,
    headEpochs: 5,
    peers: options.peers,
    json: path('workflow', 'json'),
    markdown: path('workflow', 'md'),
    log: options.log,
  });
  const sections = await Promise.all(
    [
      ['Image pipeline', 'images'],
      ['Base training starvation', 'training'],
      ['Stacked workflow', 'workflow'],
    ].map(async ([title, name]) => `## ${title}\n\n${(await readFile(path(name!, 'md'), 'utf8')).trim()}\n`),
  );
  await writeFile(path('summary', 'md'), `# featherstack benchmarks\n\n${sections.join('\n')}\n![images/s against decode workers](images-workers.png)\n`);
  return { images, training, workflow, summary: path('summary', 'md') };
}
