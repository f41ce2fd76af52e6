#!/usr/bin/env node
// The seed's stacked workflow end to end — base training, feature extraction to Arrow files, head
// training — run by featherstack (`featherstack run`) and by Keras (peers/keras_workflow.py) on the
// same dataset, the same way: wall time per stage and validation accuracy side by side.
//
//   node benchmarks/workflow.mjs --data DIR [--base-epochs 1] [--head-epochs 5] [--batch-size 32]
//                                [--json FILE] [--markdown FILE] [--chart FILE.png] [--no-peers]
//
// DIR holds train/ and val/ class folders (full Fashion-MNIST: `featherstack bench workflow`
// prepares it with datasets/fashion-mnist.mjs).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log, machine, OUTPUT_OPTIONS, PEER_OPTION, runPeer } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    'base-epochs': { type: 'string', default: '1' },
    'head-epochs': { type: 'string', default: '5' },
    'batch-size': { type: 'string', default: '32' },
    ...OUTPUT_OPTIONS,
    ...PEER_OPTION,
  },
});
if (!values.data) throw new Error('--data DIR (with train/ and val/ class folders) is required');
const data = resolve(values.data);
const cli = join(import.meta.dirname, '..', 'packages', 'cli', 'bin', 'featherstack.js');

const out = mkdtempSync(join(tmpdir(), 'featherstack-workflow-'));
log(`featherstack run on ${data} …`);
const ours = spawnSync(
  process.execPath,
  // The seed does not score its base on validation data during training: neither does this run.
  [cli, 'run', '--json', '--no-validate-base', '--data', data, '--out', out, '--base-epochs', values['base-epochs'], '--head-epochs', values['head-epochs'], '--batch-size', values['batch-size']],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
rmSync(out, { recursive: true, force: true });
if (ours.status !== 0) throw new Error(`featherstack run exited with ${ours.status}`);
const featherstack = JSON.parse(ours.stdout.trim().split('\n').pop());
log(`featherstack: ${JSON.stringify(featherstack.seconds)}, accuracy ${featherstack.val_accuracy}`);

if (!values['no-peers']) log('keras (the seed workflow) …');
const keras = runPeer('keras_workflow.py', ['--data', data, '--base-epochs', values['base-epochs'], '--head-epochs', values['head-epochs'], '--batch', values['batch-size']], { enabled: !values['no-peers'] });
if (keras.status === 'ok') log(`keras: ${JSON.stringify(keras.seconds)}, accuracy ${keras.val_accuracy}`);

const ratio = (a, b) => (b ? Number((a / b).toFixed(2)) : null);
const result = {
  benchmark: 'workflow',
  data,
  baseEpochs: Number(values['base-epochs']),
  headEpochs: Number(values['head-epochs']),
  batchSize: Number(values['batch-size']),
  ...machine(),
  featherstack: { val_accuracy: featherstack.val_accuracy, seconds: featherstack.seconds, throughput: featherstack.throughput, workers: featherstack.workers },
  keras,
  ratios: {
    wallTimeVsKeras: ratio(featherstack.seconds.total, keras.seconds?.total),
    baseVsKeras: ratio(featherstack.seconds.base_train, keras.seconds?.base_train),
    extractVsKeras: ratio(featherstack.seconds.extract, keras.seconds?.extract),
    headVsKeras: ratio(featherstack.seconds.head_train, keras.seconds?.head_train),
  },
};
const f = featherstack.seconds;
const k = keras.seconds ?? {};
const cell = (v) => (v === undefined ? 'not run' : Number(v).toFixed(1));
const md = [
  `Workflow: ${data}, ${result.baseEpochs} base epoch(s) + ${result.headEpochs} head epochs, batch ${result.batchSize}, ${result.cores} cores (${result.cpu}).`,
  '',
  '| stage | featherstack (s) | Keras (s) | featherstack ÷ Keras |',
  '|---|---:|---:|---:|',
  `| setup | ${cell(f.setup)} | ${cell(k.setup)} | ${ratio(f.setup, k.setup) ?? '–'} |`,
  `| base training | ${cell(f.base_train)} | ${cell(k.base_train)} | ${result.ratios.baseVsKeras ?? '–'} |`,
  `| feature extraction | ${cell(f.extract)} | ${cell(k.extract)} | ${result.ratios.extractVsKeras ?? '–'} |`,
  `| head training | ${cell(f.head_train)} | ${cell(k.head_train)} | ${result.ratios.headVsKeras ?? '–'} |`,
  `| **total** | **${cell(f.total)}** | **${cell(k.total)}** | **${result.ratios.wallTimeVsKeras ?? '–'}** |`,
  `| validation accuracy | ${featherstack.val_accuracy.toFixed(4)} | ${keras.val_accuracy?.toFixed(4) ?? 'not run'} | |`,
  '',
  ...(keras.status === 'ok' ? [] : [`Keras ${keras.status}: ${keras.reason}.`, '']),
].join('\n');
if (values.chart) {
  const { barChart, svgToPng } = await import('@featherstack/cli');
  const stages = [['base training', 'base_train'], ['extraction', 'extract'], ['head training', 'head_train'], ['total', 'total']];
  const svg = barChart({
    title: `Stacked workflow: seconds per stage (lower is better), ${result.baseEpochs} base + ${result.headEpochs} head epochs`,
    unit: 's',
    bars: stages.flatMap(([label, key]) => [
      { label: `${label}: featherstack`, value: f[key] },
      { label: `${label}: Keras`, value: k[key] ?? Number.NaN, color: '#d62728' },
    ]),
  });
  writeFileSync(values.chart, await svgToPng(svg));
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
if (values.markdown) writeFileSync(values.markdown, md);
process.stdout.write(`${JSON.stringify(result)}\n`);
