#!/usr/bin/env node
// Base training on the cores: images/s of the seed CNN's training step for every layout of
// replicas × TensorFlow threads that fits the machine, the eager engine, mixed precision, and the
// system allocator against TensorFlow's BFC allocator — on batches already in memory, so that only
// training is measured. Every row runs in a process of its own (the allocator and thread pools are
// fixed when TensorFlow loads), rows interleaved over repeats, medians reported with peak RSS.
//
//   node benchmarks/scaling.mjs --data DIR [--size 28] [--color-mode grayscale] [--steps 20] [--repeats 3]
//                               [--json FILE] [--markdown FILE] [--chart FILE.png]
//
// Parallel efficiency = images/s ÷ (images/s of 1 replica × 1 thread × replicas × threads).
// Peers (peers/keras_step.py): Keras's train_on_batch on the same kind of batches, as users run it,
// with the BFC allocator, and with its mixed_bfloat16 policy.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, runPeer, writeSuiteOutputs } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    size: { type: 'string', default: '28' },
    'color-mode': { type: 'string', default: 'grayscale' },
    steps: { type: 'string', default: '20' },
    repeats: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '32' },
    child: { type: 'string' },
    ...OUTPUT_OPTIONS,
    ...PEER_OPTION,
  },
});
if (!values.data) throw new Error('--data DIR (class folders) is required');
const size = Number(values.size);
const steps = Number(values.steps);
const repeats = Number(values.repeats);
const batchSize = Number(values['batch-size']);
for (const [flag, v] of [
  ['--size', size],
  ['--steps', steps],
  ['--repeats', repeats],
  ['--batch-size', batchSize],
]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer, received ${v}`);
}

if (values.child) {
  // One row: load TensorFlow with this row's allocator, train `steps` steps after 2 warm-up steps.
  const row = JSON.parse(values.child);
  const { loadTensorFlow } = await import('@featherstack/tensorflow');
  const tf = loadTensorFlow({ intraOpThreads: row.threads * row.replicas, interOpThreads: 1, allocator: row.allocator });
  const { flowFromDirectory } = await import('@featherstack/images');
  const { createBaseModel, withClassifier, trainBase } = await import('@featherstack/core');
  const flow = await flowFromDirectory(resolve(values.data), {
    targetSize: [size, size],
    colorMode: values['color-mode'],
    batchSize,
    seed: 1,
    workers: 2,
    augment: { rescale: 1 / 255, shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true },
  });
  // Batches decoded once, then replayed from memory: a flow over them for trainBase.
  const batches = [];
  for await (const b of flow.epoch(0)) {
    batches.push({
      ...b,
      images: b.images.slice(),
      classIndex: b.classIndex.slice(),
      labels: (
        (l) => () =>
          l
      )(b.labels().slice()),
    });
    if (batches.length === Math.min(8, flow.length)) break;
  }
  await flow.close();
  const memory = {
    classNames: flow.classNames,
    classMode: 'categorical',
    length: steps + 2,
    async *epoch() {
      for (let i = 0; i < steps + 2; i++) yield { ...batches[i % batches.length], index: i };
    },
  };
  const model = withClassifier(tf, createBaseModel(tf, { inputShape: [size, size, flow.image.channels], seed: 1 }), flow.classNames.length);
  const times = [];
  let last = performance.now();
  const cpuBefore = process.resourceUsage();
  await trainBase(tf, model, memory, {
    epochs: 1,
    engine: row.engine,
    ...(row.engine === 'graph' ? { replicas: row.replicas, threadsPerReplica: row.threads, precision: row.precision } : {}),
    onBatch: () => {
      const now = performance.now();
      times.push(now - last);
      last = now;
    },
  });
  const measured = times.slice(2);
  const seconds = measured.reduce((a, b) => a + b, 0) / 1000;
  const usage = process.resourceUsage();
  process.stdout.write(
    `${JSON.stringify({ imagesPerSecond: (measured.length * batchSize) / seconds, msPerStep: median(measured), peakRssMB: Math.round(usage.maxRSS / 1024), userSeconds: (usage.userCPUTime - cpuBefore.userCPUTime) / 1e6, systemSeconds: (usage.systemCPUTime - cpuBefore.systemCPUTime) / 1e6 })}\n`,
  );
  process.exit(0);
}

const cores = availableParallelism();
const layouts = [];
for (let replicas = 1; replicas <= cores; replicas++) for (let threads = 1; replicas * threads <= cores; threads++) layouts.push({ replicas, threads });
const ROWS = [
  ...layouts.map((l) => ({ label: `graph, ${l.replicas} replica(s) × ${l.threads} thread(s)`, engine: 'graph', precision: 'float32', allocator: 'bfc', ...l })),
  { label: `graph, mixed-bfloat16, 1 × ${cores}`, engine: 'graph', precision: 'mixed-bfloat16', allocator: 'bfc', replicas: 1, threads: cores },
  { label: `graph, system allocator, 1 × ${cores}`, engine: 'graph', precision: 'float32', allocator: 'system', replicas: 1, threads: cores },
  { label: `eager (tfjs ops), 1 × ${cores}`, engine: 'eager', allocator: 'bfc', replicas: 1, threads: cores },
  { label: `eager (tfjs ops), system allocator, 1 × ${cores}`, engine: 'eager', allocator: 'system', replicas: 1, threads: cores },
  ...(values['no-peers']
    ? []
    : [
        { label: 'Keras train_on_batch, as users run it', peer: {} },
        { label: 'Keras train_on_batch, TF_CPU_ALLOCATOR_USE_BFC=true', peer: { TF_CPU_ALLOCATOR_USE_BFC: 'true' } },
        { label: 'Keras train_on_batch, mixed_bfloat16, BFC', peer: { TF_CPU_ALLOCATOR_USE_BFC: 'true' }, mixed: true },
      ]),
];
const runs = ROWS.map(() => []);
for (let rep = 0; rep < repeats; rep++) {
  for (let i = 0; i < ROWS.length; i++) {
    const k = (i + rep) % ROWS.length;
    const row = ROWS[k];
    if (row.peer) {
      const peerArgs = [
        '--data',
        values.data,
        '--size',
        size,
        '--color-mode',
        values['color-mode'],
        '--steps',
        steps,
        '--batch',
        batchSize,
        ...(row.mixed ? ['--mixed'] : []),
      ];
      const r = runPeer('keras_step.py', peerArgs, { env: row.peer });
      if (r.status !== 'ok') {
        log(`${row.label}: ${r.status} (${r.reason})`);
        continue;
      }
      runs[k].push(r);
      log(
        `repeat ${rep + 1}/${repeats}: ${row.label}: ${r.imagesPerSecond.toFixed(0)} images/s, ${r.msPerStep.toFixed(0)} ms/step, peak RSS ${r.peakRssMB} MB`,
      );
      continue;
    }
    const args = [
      import.meta.filename,
      '--data',
      values.data,
      '--size',
      String(size),
      '--color-mode',
      values['color-mode'],
      '--steps',
      String(steps),
      '--batch-size',
      String(batchSize),
      '--child',
      JSON.stringify(row),
    ];
    const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.status !== 0) throw new Error(`${row.label} failed (exit ${child.status}): ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const r = JSON.parse(child.stdout.trim().split('\n').pop());
    runs[k].push(r);
    log(`repeat ${rep + 1}/${repeats}: ${row.label}: ${r.imagesPerSecond.toFixed(0)} images/s, ${r.msPerStep.toFixed(0)} ms/step, peak RSS ${r.peakRssMB} MB`);
  }
}
const rows = ROWS.map((row, k) =>
  runs[k].length === 0
    ? { ...row, status: 'not run' }
    : {
        ...row,
        imagesPerSecond: Math.round(median(runs[k].map((r) => r.imagesPerSecond)) * 10) / 10,
        msPerStep: Number(median(runs[k].map((r) => r.msPerStep)).toFixed(1)),
        peakRssMB: Math.max(...runs[k].map((r) => r.peakRssMB)),
        userSeconds: Number(median(runs[k].map((r) => r.userSeconds)).toFixed(1)),
        systemSeconds: Number(median(runs[k].map((r) => r.systemSeconds)).toFixed(1)),
      },
).filter((r) => r.status !== 'not run');
const single = rows.find((r) => r.engine === 'graph' && r.precision === 'float32' && r.allocator === 'bfc' && r.replicas === 1 && r.threads === 1);
for (const r of rows)
  if (r.engine === 'graph' && r.precision === 'float32' && r.allocator === 'bfc')
    r.efficiency = Number((r.imagesPerSecond / (single.imagesPerSecond * r.replicas * r.threads)).toFixed(2));
const eager = rows.find((r) => r.engine === 'eager' && r.allocator === 'bfc');
const kerasBfc = rows.find((r) => r.peer?.TF_CPU_ALLOCATOR_USE_BFC && !r.mixed);
const result = { benchmark: 'scaling', data: resolve(values.data), size, colorMode: values['color-mode'], batchSize, steps, repeats, ...machine(), rows };
const md = [
  `Base training step (seed CNN, ${size}×${size} ${values['color-mode']}, batch ${batchSize}, batches in memory), ${cores} cores: median of ${repeats} interleaved repeats of ${steps} steps, each row in a process of its own.`,
  '',
  '| engine, layout | images/s | ms/step | parallel efficiency | ÷ eager | ÷ Keras (BFC) | peak RSS (MB) | user / sys CPU (s) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.label} | ${r.imagesPerSecond} | ${r.msPerStep} | ${r.efficiency ?? ''} | ${(r.imagesPerSecond / eager.imagesPerSecond).toFixed(2)} | ${kerasBfc ? (r.imagesPerSecond / kerasBfc.imagesPerSecond).toFixed(2) : 'not run'} | ${r.peakRssMB} | ${r.userSeconds} / ${r.systemSeconds} |`,
  ),
  '',
].join('\n');
await writeSuiteOutputs(values, result, md, {
  title: `Base training images/s at ${size}×${size} (${cores} cores)`,
  unit: 'images/s',
  bars: rows.map((r) => ({
    label: r.label,
    value: r.imagesPerSecond,
    color: r.peer ? '#d62728' : r.engine === 'eager' ? '#888' : r.precision === 'mixed-bfloat16' || r.mixed ? '#2ca02c' : '#1f77b4',
  })),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
