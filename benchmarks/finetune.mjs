#!/usr/bin/env node
// Fine-tuning real backbones (the transfer-learning guide's second phase): keras.applications
// MobileNetV2 and ResNet50 at 224² on the photo corpus, every layer with weights trainable and
// BatchNormalization frozen, Adam 1e-5, batch 32, the seed's augmentation with preprocess_input.
// featherstack (float32 and mixed-bfloat16, each row a process of its own: finetune-row.mjs)
// against Keras's own recipe (peers/keras_finetune.py: base(x, training=False) over
// ImageDataGenerator). One run, rows interleaved over repeats, medians of the last epoch's images/s
// (the first includes compiling and warming up on both sides); peak RSS and CPU time.
//
//   node benchmarks/finetune.mjs --data DIR [--archs mobilenetv2,resnet50] [--epochs 2] [--repeats 3]
//        [--bn-train] [--no-peers] [--json FILE] [--markdown FILE] [--chart FILE.png]
//
// --bn-train adds two rows: BatchNormalization training on batch statistics (featherstack
// --bn-train, in-graph replicas; Keras calling the base without training=False).
//
// DIR holds train/<class>/ (the rows train on it). The PyTorch row (peers/torch_finetune.py) is
// torchvision's same architecture in the loop a PyTorch user writes, BatchNorm in eval mode as
// Keras's recipe has it (with --bn-train, a torch-bn-train row trains it in train mode).
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKBONE_ARCHS, backboneFile, log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, parseArchs, runPeer, writeSuiteOutputs } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    archs: { type: 'string', default: 'mobilenetv2,resnet50' },
    epochs: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '3' },
    'bn-train': { type: 'boolean', default: false },
    ...PEER_OPTION,
    ...OUTPUT_OPTIONS,
  },
});
if (!values.data) throw new Error('--data DIR (train/ class folders) is required');
const data = resolve(values.data);
const archs = parseArchs(values.archs);
const repeats = Number(values.repeats);
const epochs = Number(values.epochs);
const peers = !values['no-peers'];
const cores = availableParallelism();

function featherstackRow(arch, precision, bnTrain = false) {
  const args = [join(import.meta.dirname, 'finetune-row.mjs'), '--model', backboneFile(arch), '--data', join(data, 'train')];
  args.push('--preprocess', BACKBONE_ARCHS[arch].preprocess, '--precision', precision, '--epochs', String(epochs), ...(bnTrain ? ['--bn-train'] : []));
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (child.status !== 0)
    return {
      status: 'failed',
      reason: `finetune-row.mjs exited with ${child.status ?? child.signal}: ${child.stderr.trim().split('\n').slice(-2).join(' | ')}`,
    };
  return { status: 'ok', ...JSON.parse(child.stdout.trim().split('\n').pop()) };
}

const rowNames = ['fs-float32', 'fs-bfloat16', 'keras', 'torch', ...(values['bn-train'] ? ['fs-bn-train', 'keras-bn-train', 'torch-bn-train'] : [])];
const run = (arch, row) =>
  row.startsWith('torch')
    ? runPeer(
        'torch_finetune.py',
        [
          '--data',
          join(data, 'train'),
          '--arch',
          BACKBONE_ARCHS[arch].torch,
          '--epochs',
          epochs,
          '--workers',
          cores,
          ...(row === 'torch-bn-train' ? ['--bn-train'] : []),
        ],
        { enabled: peers },
      )
    : row.startsWith('keras')
      ? runPeer('keras_finetune.py', ['--data', join(data, 'train'), '--arch', arch, '--epochs', epochs, ...(row === 'keras-bn-train' ? ['--bn-train'] : [])], {
          enabled: peers,
        })
      : featherstackRow(arch, row === 'fs-bfloat16' ? 'mixed-bfloat16' : 'float32', row === 'fs-bn-train');
/** The last epoch's images/s: the first includes compiling and warming up on both sides. */
const rate = (r) => (r.status === 'ok' && Array.isArray(r.imagesPerSecond) ? r.imagesPerSecond.at(-1) : null);
const rssOf = (r) => r.cpu?.peakRssMB ?? r.peakRssMB ?? null;

const runs = Object.fromEntries(archs.map((a) => [a, Object.fromEntries(rowNames.map((r) => [r, []]))]));
const last = Object.fromEntries(archs.map((a) => [a, {}]));
log(`fine-tuning: ${archs.join(', ')} at 224² on ${join(data, 'train')}, all layers, ${epochs} epochs, ${cores} cores, ${repeats} interleaved repeats`);
for (let r = 0; r < repeats; r++) {
  for (const arch of archs) {
    for (const row of rowNames) {
      const result = run(arch, row);
      last[arch][row] = result;
      if (rate(result) !== null) runs[arch][row].push(result);
      log(`repeat ${r + 1} ${arch} ${row}: ${rate(result)?.toFixed(1) ?? `${result.status} (${result.reason})`} images/s, peak RSS ${rssOf(result) ?? '?'} MB`);
    }
  }
}

function summary(arch, row) {
  const list = runs[arch][row];
  if (list.length === 0) return { status: last[arch][row].status, reason: last[arch][row].reason };
  const rates = list.map(rate);
  const mid = list[rates.indexOf(median(rates))] ?? list[0];
  return { imagesPerSecond: Math.round(median(rates) * 10) / 10, peakRssMB: median(list.map(rssOf)), repeats: rates.length, run: mid };
}
const table = Object.fromEntries(archs.map((a) => [a, Object.fromEntries(rowNames.map((r) => [r, summary(a, r)]))]));
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const result = {
  benchmark: 'fine-tune',
  data,
  epochs,
  ...machine(),
  repeats,
  table,
  ratios: Object.fromEntries(
    archs.map((a) => {
      const t = table[a];
      return [
        a,
        {
          float32OverKeras: ratio(t['fs-float32'].imagesPerSecond, t.keras.imagesPerSecond),
          bfloat16OverKeras: ratio(t['fs-bfloat16'].imagesPerSecond, t.keras.imagesPerSecond),
          rssOverKeras: ratio(t['fs-float32'].peakRssMB, t.keras.peakRssMB),
          float32OverTorch: ratio(t['fs-float32'].imagesPerSecond, t.torch.imagesPerSecond),
          ...(t['fs-bn-train']
            ? {
                bnTrainOverKeras: ratio(t['fs-bn-train'].imagesPerSecond, t['keras-bn-train'].imagesPerSecond),
                bnTrainRssOverKeras: ratio(t['fs-bn-train'].peakRssMB, t['keras-bn-train'].peakRssMB),
              }
            : {}),
        },
      ];
    }),
  ),
  runs,
};
const LABELS = {
  'fs-float32': 'featherstack `train-base --model --fine-tune all`, float32 (compiled graph)',
  'fs-bfloat16': 'featherstack, mixed-bfloat16',
  keras: "Keras's recipe (base(x, training=False), ImageDataGenerator)",
  'fs-bn-train': 'featherstack `--bn-train`: BatchNormalization on batch statistics, float32',
  'keras-bn-train': 'Keras, base(x): BatchNormalization on batch statistics',
  torch: 'PyTorch (torchvision, BatchNorm in eval mode, DataLoader workers)',
  'torch-bn-train': 'PyTorch, BatchNorm in train mode',
};
/** The Keras row a row is compared with. */
const peerOf = (row) => (row.endsWith('bn-train') ? 'keras-bn-train' : 'keras');
function cell(arch, row) {
  const s = table[arch][row];
  if (s.imagesPerSecond === undefined) return `| ${LABELS[row]} | ${s.status} (${String(s.reason).slice(0, 80)}) | | | |`;
  const user = s.run.cpu?.userSeconds ?? s.run.userSeconds;
  const sys = s.run.cpu?.systemSeconds ?? s.run.systemSeconds;
  const threads = s.run.cpu?.threads ? ` (TF ${s.run.cpu.threads.tensorflow} s, decode ${s.run.cpu.threads.decode} s)` : '';
  return `| ${LABELS[row]} | ${s.imagesPerSecond} | ${ratio(s.imagesPerSecond, table[arch][peerOf(row)].imagesPerSecond) ?? ''} | ${s.peakRssMB ?? ''} | ${user ?? ''} / ${sys ?? ''}${threads} |`;
}
const md = [
  `Fine-tuning real backbones (keras.applications, weights=None, include_top=False, pooling='avg', a softmax top) at 224² RGB on ${join(data, 'train')}: every layer with weights trainable, BatchNormalization frozen (inference mode; the bn-train rows: trained on batch statistics, each compared with Keras's bn-train row), Adam 1e-5, batch 32, the seed's augmentation with preprocess_input; ${cores} cores (${cpus()[0]?.model ?? ''}). Images/s of the last of ${epochs} epochs, medians of ${repeats} interleaved repeats, each row a process of its own; CPU time of the whole process.`,
  '',
  ...archs.flatMap((arch) => [
    `**${arch}**`,
    '',
    '| fine-tuning | images/s | ÷ Keras | peak RSS MB | CPU user / sys s |',
    '|---|---:|---:|---:|---|',
    ...rowNames.map((row) => cell(arch, row)),
    '',
  ]),
].join('\n');
await writeSuiteOutputs(values, result, md, {
  title: 'Fine-tuning backbones, images/s (224² RGB)',
  unit: 'images/s',
  bars: archs.flatMap((a) => rowNames.filter((r) => table[a][r].imagesPerSecond).map((r) => ({ label: `${a} ${r}`, value: table[a][r].imagesPerSecond }))),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
