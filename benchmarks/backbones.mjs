#!/usr/bin/env node
// Real backbones: feature extraction through keras.applications MobileNetV2, ResNet50 and
// EfficientNetB0 at 224² on the photo corpus, featherstack (float32 and mixed-bfloat16, each row a
// process of its own: backbone-row.mjs) against Keras (model.predict over ImageDataGenerator, and
// over image_dataset_from_directory with AUTOTUNE) and PyTorch (torchvision, DataLoader with
// workers); then `featherstack run --base` against Keras's frozen-base transfer recipe. One run,
// rows interleaved over repeats, medians; images/s, peak RSS, CPU user/system and by thread group,
// achieved GFLOP/s against an estimate of the machine's peak.
//
//   node benchmarks/backbones.mjs --data DIR [--archs mobilenetv2,resnet50,efficientnetb0] [--repeats 3]
//        [--head-epochs 5] [--no-peers] [--json FILE] [--markdown FILE] [--chart FILE.png]
//
// DIR holds train/<class>/ and val/<class>/ (extraction rows read train/). Keras runs with oneDNN on
// (its default) and, where that dies (ResNet50 has been seen to SIGFPE), again with it off; the
// table says which. featherstack runs with oneDNN off (its default: see @featherstack/tensorflow).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKBONE_ARCHS, BACKBONES, backboneFile, log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, parseArchs, runPeer, writeSuiteOutputs } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    archs: { type: 'string', default: 'mobilenetv2,resnet50,efficientnetb0' },
    repeats: { type: 'string', default: '3' },
    'head-epochs': { type: 'string', default: '5' },
    ...PEER_OPTION,
    ...OUTPUT_OPTIONS,
  },
});
if (!values.data) throw new Error('--data DIR (train/ and val/ class folders) is required');
const data = resolve(values.data);
const archs = parseArchs(values.archs);
const repeats = Number(values.repeats);
const peers = !values['no-peers'];
const cores = availableParallelism();

function featherstackRow(arch, precision) {
  const args = [
    join(import.meta.dirname, 'backbone-row.mjs'),
    '--model',
    backboneFile(arch),
    '--data',
    join(data, 'train'),
    '--preprocess',
    BACKBONE_ARCHS[arch].preprocess,
    '--precision',
    precision,
  ];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (child.status !== 0)
    return {
      status: 'failed',
      reason: `backbone-row.mjs exited with ${child.status ?? child.signal}: ${child.stderr.trim().split('\n').slice(-2).join(' | ')}`,
    };
  return { status: 'ok', ...JSON.parse(child.stdout.trim().split('\n').pop()) };
}

/** A Keras peer with oneDNN on; where that dies of a signal, again with it off. */
function kerasRow(arch, loader) {
  const args = ['--data', join(data, 'train'), '--arch', arch, '--loader', loader, '--repeats', 1];
  const on = runPeer('keras_backbones.py', [...args, '--onednn', 1], { enabled: peers });
  if (on.status !== 'failed') return on;
  const off = runPeer('keras_backbones.py', [...args, '--onednn', 0], { enabled: peers });
  return { ...off, onednnOnFailed: on.reason };
}

const rowNames = ['fs-float32', 'fs-bfloat16', 'keras-idg', 'keras-tfdata', 'torch'];
const run = (arch, row) =>
  row === 'fs-float32'
    ? featherstackRow(arch, 'float32')
    : row === 'fs-bfloat16'
      ? featherstackRow(arch, 'mixed-bfloat16')
      : row === 'torch'
        ? runPeer('torch_backbones.py', ['--data', join(data, 'train'), '--arch', BACKBONE_ARCHS[arch].torch, '--repeats', 1, '--workers', cores], {
            enabled: peers,
          })
        : kerasRow(arch, row === 'keras-idg' ? 'idg' : 'tfdata');
const rate = (r) => (r.status !== 'ok' ? null : Array.isArray(r.imagesPerSecond) ? r.imagesPerSecond[0] : r.imagesPerSecond);

/** `featherstack run --base` (frozen MobileNetV2), whole, with its own JSON result. */
function featherstackRun() {
  const started = performance.now();
  const args = [
    'run',
    '--base',
    backboneFile('mobilenetv2'),
    '--preprocess',
    'tf',
    '--data',
    data,
    '--out',
    join(BACKBONES, 'run'),
    '--head-epochs',
    values['head-epochs'],
    '--json',
  ];
  const child = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'packages', 'cli', 'dist', 'bin.js'), ...args], { encoding: 'utf8' });
  if (child.status !== 0) return { status: 'failed', reason: child.stderr.trim().split('\n').slice(-2).join(' | ') };
  const result = JSON.parse(child.stdout.trim().split('\n').pop());
  // Keras's recipe is timed after `import keras` has loaded TensorFlow: featherstack's run likewise
  // after loadTensorFlow (its seconds.tensorflow_load). Both processes are also timed whole.
  return {
    status: 'ok',
    seconds: result.seconds.total - result.seconds.tensorflow_load,
    tensorflowLoadSeconds: result.seconds.tensorflow_load,
    processSeconds: (performance.now() - started) / 1000,
    peakRssMB: result.cpu.peakRssMB,
    valAccuracy: result.val_accuracy,
    cpu: result.cpu,
  };
}

/** Peak single-precision GFLOP/s estimate: cores × clock × 64 (two 16-wide FMA pipes: AVX-512; ResNet50 reached 105 GFLOP/s a core here). */
function peakGflops() {
  const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 0);
  return Math.round((cores * mhz * 64) / 1000);
}

const runs = Object.fromEntries(archs.map((a) => [a, Object.fromEntries(rowNames.map((r) => [r, []]))]));
const last = Object.fromEntries(archs.map((a) => [a, {}]));
const workflow = { featherstack: [], keras: [] };
let lastWorkflow = {};
log(`backbones: ${archs.join(', ')} at 224² on ${data} (train/ for extraction), ${cores} cores, ${repeats} interleaved repeats`);
for (let r = 0; r < repeats; r++) {
  for (const arch of archs) {
    for (const row of rowNames) {
      const result = run(arch, row);
      last[arch][row] = result;
      if (rate(result) !== null) runs[arch][row].push(result);
      log(`repeat ${r + 1} ${arch} ${row}: ${rate(result)?.toFixed(1) ?? `${result.status} (${result.reason})`} images/s`);
    }
  }
  const fs = featherstackRun();
  const keras = runPeer('keras_transfer.py', ['--data', data, '--arch', 'mobilenetv2', '--epochs', values['head-epochs'], '--onednn', 1], { enabled: peers });
  lastWorkflow = { featherstack: fs, keras };
  if (fs.status === 'ok') workflow.featherstack.push(fs);
  if (keras.status === 'ok') workflow.keras.push(keras);
  log(`repeat ${r + 1} run --base: featherstack ${fs.seconds?.toFixed(1) ?? fs.status} s, Keras ${keras.seconds?.toFixed(1) ?? keras.status} s`);
}

/** The median run (by images/s) of a row, or its last failure. */
function summary(arch, row) {
  const list = runs[arch][row];
  if (list.length === 0) return { status: last[arch][row].status, reason: last[arch][row].reason };
  const rates = list.map(rate);
  const mid = list[rates.indexOf(median(rates))] ?? list[0];
  return { imagesPerSecond: Math.round(median(rates) * 10) / 10, repeats: rates.length, run: mid };
}
const peak = peakGflops();
const table = Object.fromEntries(archs.map((a) => [a, Object.fromEntries(rowNames.map((r) => [r, summary(a, r)]))]));
const gflopsPerImage = Object.fromEntries(archs.map((a) => [a, table[a]['keras-idg'].run?.gflopsPerImage ?? table[a].torch.run?.gflopsPerImage ?? null]));
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const medianBy = (list, key) => (list.length ? median(list.map((x) => x[key])) : null);
const result = {
  benchmark: 'backbones',
  data,
  ...machine(),
  repeats,
  peakGflopsEstimate: peak,
  table,
  gflopsPerImage,
  ratios: Object.fromEntries(
    archs.map((a) => {
      const t = table[a];
      return [
        a,
        {
          float32OverKerasIdg: ratio(t['fs-float32'].imagesPerSecond, t['keras-idg'].imagesPerSecond),
          float32OverKerasTfdata: ratio(t['fs-float32'].imagesPerSecond, t['keras-tfdata'].imagesPerSecond),
          bfloat16OverKerasIdg: ratio(t['fs-bfloat16'].imagesPerSecond, t['keras-idg'].imagesPerSecond),
          float32OverTorch: ratio(t['fs-float32'].imagesPerSecond, t.torch.imagesPerSecond),
          rssOverKerasIdg: ratio(t['fs-float32'].run?.cpu?.peakRssMB, t['keras-idg'].run?.process?.peakRssMB),
        },
      ];
    }),
  ),
  workflow: {
    featherstackSeconds: medianBy(workflow.featherstack, 'seconds'),
    kerasSeconds: medianBy(workflow.keras, 'seconds'),
    featherstackPeakRssMB: medianBy(workflow.featherstack, 'peakRssMB'),
    kerasPeakRssMB: medianBy(workflow.keras, 'peakRssMB'),
    ratio: ratio(medianBy(workflow.featherstack, 'seconds'), medianBy(workflow.keras, 'seconds')),
    featherstackProcessSeconds: medianBy(workflow.featherstack, 'processSeconds'),
    kerasProcessSeconds: medianBy(workflow.keras, 'processSeconds'),
    processRatio: ratio(medianBy(workflow.featherstack, 'processSeconds'), medianBy(workflow.keras, 'processSeconds')),
    last: lastWorkflow,
  },
  runs,
};

const LABELS = {
  'fs-float32': 'featherstack, float32 (compiled graph)',
  'fs-bfloat16': 'featherstack, mixed-bfloat16',
  'keras-idg': 'Keras model.predict over ImageDataGenerator',
  'keras-tfdata': 'Keras model.predict over image_dataset_from_directory (AUTOTUNE)',
  torch: 'PyTorch (torchvision, DataLoader workers)',
};
function cell(arch, row) {
  const s = table[arch][row];
  if (s.imagesPerSecond === undefined) return `| ${LABELS[row]} | ${s.status} (${String(s.reason).slice(0, 80)}) | | | | |`;
  const run = s.run;
  const rss = run.cpu?.peakRssMB ?? run.process?.peakRssMB;
  const user = run.cpu?.userSeconds ?? run.process?.userSeconds;
  const sys = run.cpu?.systemSeconds ?? run.process?.systemSeconds;
  const threads = run.cpu?.threads ? ` (TF ${run.cpu.threads.tensorflow} s, decode ${run.cpu.threads.decode} s)` : '';
  const onednn = row.startsWith('keras') ? (run.onednnOnFailed ? ' oneDNN off: on died' : run.onednn === 0 ? ' oneDNN off' : ' oneDNN on') : '';
  const gflops = gflopsPerImage[arch] ? (gflopsPerImage[arch] * s.imagesPerSecond).toFixed(0) : '';
  return `| ${LABELS[row]}${onednn} | ${s.imagesPerSecond} | ${ratio(s.imagesPerSecond, table[arch]['keras-idg'].imagesPerSecond) ?? ''} | ${rss ?? ''} | ${user ?? ''} / ${sys ?? ''}${threads} | ${gflops} |`;
}
const md = [
  `Feature extraction through real backbones (keras.applications, weights=None, include_top=False, pooling='avg') at 224² RGB, ${runs[archs[0]]['fs-float32'][0]?.rows ?? '?'} photos, ${cores} cores (${cpus()[0]?.model ?? ''}): images/s, medians of ${repeats} interleaved repeats, each row a process of its own. GFLOP/s achieved from the peer's FLOP count (peak estimate ${peak} GFLOP/s).`,
  '',
  ...archs.flatMap((arch) => [
    `**${arch}** (${gflopsPerImage[arch]?.toFixed(2) ?? '?'} GFLOP per image)`,
    '',
    '| extraction | images/s | ÷ Keras IDG | peak RSS MB | CPU user / sys s | GFLOP/s |',
    '|---|---:|---:|---:|---|---:|',
    ...rowNames.map((row) => cell(arch, row)),
    '',
  ]),
  `\`run --base\` (frozen MobileNetV2, extract train and val, ${values['head-epochs']} head epochs; medians of ${workflow.featherstack.length} interleaved repeats), seconds from the model's construction or import, once TensorFlow is loaded, to the end of head training: featherstack ${result.workflow.featherstackSeconds?.toFixed(1) ?? 'failed'} s (peak RSS ${result.workflow.featherstackPeakRssMB ?? '?'} MB), Keras's recipe ${result.workflow.kerasSeconds?.toFixed(1) ?? 'not run'} s (${result.workflow.kerasPeakRssMB ?? '?'} MB): **${result.workflow.ratio ?? '?'}×** Keras's time. Whole processes (imports and TensorFlow's load included): ${result.workflow.featherstackProcessSeconds?.toFixed(1) ?? '?'} s against ${result.workflow.kerasProcessSeconds?.toFixed(1) ?? '?'} s, **${result.workflow.processRatio ?? '?'}×**.`,
  '',
].join('\n');
await writeSuiteOutputs(values, result, md, {
  title: 'Backbone extraction, images/s (224² RGB)',
  unit: 'images/s',
  bars: archs.flatMap((a) => rowNames.filter((r) => table[a][r].imagesPerSecond).map((r) => ({ label: `${a} ${r}`, value: table[a][r].imagesPerSecond }))),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
