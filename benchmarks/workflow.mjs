#!/usr/bin/env node
// The seed's stacked workflow end to end — base training, feature extraction to Arrow files, head
// training — run by featherstack (`featherstack run`) and by Keras (peers/keras_workflow.py) on the
// same dataset, the same way: wall time per stage, validation accuracy, peak RSS and CPU time side
// by side. Rows run in turn and the turn order rotates every repeat (interleaved), medians reported.
//
//   node benchmarks/workflow.mjs --data DIR [--image-size 28] [--color-mode grayscale] [--repeats 1]
//                                [--base-epochs 1] [--head-epochs 5] [--batch-size 32] [--mixed]
//                                [--json FILE] [--markdown FILE] [--chart FILE.png] [--no-peers]
//
// Rows: featherstack (float32, its defaults); with --mixed also featherstack --precision
// mixed-bfloat16; Keras as users run it; Keras with TF_CPU_ALLOCATOR_USE_BFC=true (the allocator
// featherstack uses, a fairness row). DIR holds train/ and val/ class folders.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, runPeer } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    'image-size': { type: 'string', default: '28' },
    'color-mode': { type: 'string', default: 'grayscale' },
    repeats: { type: 'string', default: '1' },
    'base-epochs': { type: 'string', default: '1' },
    'head-epochs': { type: 'string', default: '5' },
    'batch-size': { type: 'string', default: '32' },
    mixed: { type: 'boolean', default: false },
    ...OUTPUT_OPTIONS,
    ...PEER_OPTION,
  },
});
if (!values.data) throw new Error('--data DIR (with train/ and val/ class folders) is required');
const data = resolve(values.data);
const size = Number(values['image-size']);
const repeats = Number(values.repeats);
for (const [flag, v] of [
  ['--image-size', size],
  ['--repeats', repeats],
])
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer, received ${v}`);
if (!['grayscale', 'rgb'].includes(values['color-mode'])) throw new Error(`--color-mode must be grayscale or rgb, received ${values['color-mode']}`);
// The command as users run it, found by package name (the workspace root depends on @featherstack/cli).
const cli = join(dirname(fileURLToPath(import.meta.resolve('@featherstack/cli/package.json'))), 'bin', 'featherstack.js');
const common = { base: values['base-epochs'], head: values['head-epochs'], batch: values['batch-size'] };

function featherstack(extra) {
  const out = mkdtempSync(join(tmpdir(), 'featherstack-workflow-'));
  // The seed does not score its base on validation data during training: neither does this run.
  const args = [
    cli,
    'run',
    '--json',
    '--no-validate-base',
    '--data',
    data,
    '--out',
    out,
    '--image-size',
    `${size}x${size}`,
    '--color-mode',
    values['color-mode'],
  ];
  args.push('--base-epochs', common.base, '--head-epochs', common.head, '--batch-size', common.batch, ...extra);
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  rmSync(out, { recursive: true, force: true });
  if (result.status !== 0) throw new Error(`featherstack run ${extra.join(' ')} exited with ${result.status}`);
  const r = JSON.parse(result.stdout.trim().split('\n').pop());
  return { status: 'ok', seconds: r.seconds, val_accuracy: r.val_accuracy, cpu: r.cpu, plan: r.plan, engine: r.base.at(-1)?.engine };
}

function keras(env) {
  const args = [
    '--data',
    data,
    '--size',
    size,
    '--color-mode',
    values['color-mode'],
    '--base-epochs',
    common.base,
    '--head-epochs',
    common.head,
    '--batch',
    common.batch,
  ];
  return runPeer('keras_workflow.py', args, { enabled: !values['no-peers'], env });
}

const ROWS = [
  { key: 'featherstack', label: 'featherstack (float32)', run: () => featherstack([]) },
  ...(values.mixed
    ? [{ key: 'featherstackMixed', label: 'featherstack --precision mixed-bfloat16', run: () => featherstack(['--precision', 'mixed-bfloat16']) }]
    : []),
  { key: 'keras', label: 'Keras, as users run it', run: () => keras({}) },
  { key: 'kerasBfc', label: 'Keras, TF_CPU_ALLOCATOR_USE_BFC=true', run: () => keras({ TF_CPU_ALLOCATOR_USE_BFC: 'true' }) },
];
const runs = Object.fromEntries(ROWS.map((r) => [r.key, []]));
for (let rep = 0; rep < repeats; rep++) {
  // Rotate the order every repeat, so that a slow spell of this machine lands on every row alike.
  for (let i = 0; i < ROWS.length; i++) {
    const row = ROWS[(i + rep) % ROWS.length];
    log(`repeat ${rep + 1}/${repeats}: ${row.label} …`);
    const r = row.run();
    runs[row.key].push(r);
    if (r.status === 'ok') log(`  ${JSON.stringify(r.seconds)}, accuracy ${r.val_accuracy}, peak RSS ${r.cpu?.peakRssMB} MB`);
  }
}

const STAGES = ['setup', 'base_train', 'extract', 'head_train', 'total'];
const summary = (list) => {
  const ok = list.filter((r) => r.status === 'ok');
  if (ok.length === 0) return { status: list[0]?.status ?? 'not run', reason: list[0]?.reason };
  const med = (f) => median(ok.map(f));
  return {
    status: 'ok',
    runs: ok.length,
    seconds: Object.fromEntries(STAGES.map((s) => [s, Number(med((r) => r.seconds[s]).toFixed(2))])),
    val_accuracy: Number(med((r) => r.val_accuracy).toFixed(4)),
    val_accuracies: ok.map((r) => r.val_accuracy),
    cpu: {
      userSeconds: Number(med((r) => r.cpu.userSeconds).toFixed(1)),
      systemSeconds: Number(med((r) => r.cpu.systemSeconds).toFixed(1)),
      peakRssMB: Math.round(Math.max(...ok.map((r) => r.cpu.peakRssMB))),
      ...(ok[0].cpu.threads
        ? { threads: Object.fromEntries(Object.keys(ok[0].cpu.threads).map((k) => [k, Number(med((r) => r.cpu.threads[k]).toFixed(1))])) }
        : {}),
    },
    ...(ok[0].plan ? { plan: ok[0].plan, engine: ok[0].engine } : {}),
  };
};
const rows = Object.fromEntries(ROWS.map((r) => [r.key, summary(runs[r.key])]));
const ratio = (a, b) => (a !== undefined && b ? Number((a / b).toFixed(2)) : null);
const ratiosOf = (key, peer) => Object.fromEntries(STAGES.map((s) => [s, ratio(rows[key].seconds?.[s], rows[peer].seconds?.[s])]));
const result = {
  benchmark: 'workflow',
  data,
  imageSize: size,
  colorMode: values['color-mode'],
  baseEpochs: Number(common.base),
  headEpochs: Number(common.head),
  batchSize: Number(common.batch),
  repeats,
  ...machine(),
  rows,
  ratios: Object.fromEntries(
    ROWS.filter((r) => r.key.startsWith('featherstack')).map((r) => [r.key, { vsKeras: ratiosOf(r.key, 'keras'), vsKerasBfc: ratiosOf(r.key, 'kerasBfc') }]),
  ),
};

const cell = (v) => (v === undefined || v === null ? 'not run' : Number(v).toFixed(1));
const lines = [
  `Workflow: ${data.split('/').slice(-2).join('/')}, ${size}×${size} ${values['color-mode']}, ${result.baseEpochs} base epoch(s) + ${result.headEpochs} head epochs, batch ${result.batchSize}, ${result.cores} cores (${result.cpu}); median of ${repeats} interleaved repeat(s).`,
  '',
  `| row | setup (s) | base (s) | extraction (s) | head (s) | **total (s)** | ÷ Keras | ÷ Keras (BFC) | val accuracy | peak RSS (MB) | user / sys CPU (s) |`,
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const row of ROWS) {
  const r = rows[row.key];
  if (r.status !== 'ok') {
    lines.push(`| ${row.label} | ${r.status}: ${r.reason ?? ''} | | | | | | | | | |`);
    continue;
  }
  const vs = result.ratios[row.key];
  const s = r.seconds;
  lines.push(
    `| ${row.label} | ${cell(s.setup)} | ${cell(s.base_train)} | ${cell(s.extract)} | ${cell(s.head_train)} | **${cell(s.total)}** | ${vs ? `**${vs.vsKeras.total ?? '–'}**` : ''} | ${vs ? (vs.vsKerasBfc.total ?? '–') : ''} | ${r.val_accuracy.toFixed(4)} | ${r.cpu.peakRssMB} | ${r.cpu.userSeconds} / ${r.cpu.systemSeconds} |`,
  );
}
lines.push('');
for (const row of ROWS.filter((r) => r.key.startsWith('featherstack') && rows[r.key].status === 'ok')) {
  const r = rows[row.key];
  const t = r.cpu.threads;
  lines.push(
    `${row.label}: ${r.engine} engine, ${r.plan.replicas} replica(s) × ${r.plan.threadsPerReplica} TensorFlow thread(s), ${r.plan.decodeWorkers} decode workers; CPU seconds by thread: TensorFlow ${t.tensorflow}, decode workers ${t.decode}, main JavaScript thread ${t.javascript}, other ${t.other}.`,
  );
}
lines.push('');
const md = lines.join('\n');
if (values.chart) {
  const { barChart, svgToPng } = await import('@featherstack/report');
  const stages = [
    ['base training', 'base_train'],
    ['extraction', 'extract'],
    ['head training', 'head_train'],
    ['total', 'total'],
  ];
  const colors = { featherstack: '#1f77b4', featherstackMixed: '#2ca02c', keras: '#d62728', kerasBfc: '#ff9896' };
  const svg = barChart({
    title: `Stacked workflow at ${size}×${size} ${values['color-mode']}: seconds per stage (lower is better)`,
    unit: 's',
    bars: stages.flatMap(([label, key]) =>
      ROWS.map((row) => ({ label: `${label}: ${row.label}`, value: rows[row.key].seconds?.[key] ?? Number.NaN, color: colors[row.key] })),
    ),
  });
  writeFileSync(values.chart, await svgToPng(svg));
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
if (values.markdown) writeFileSync(values.markdown, md);
process.stdout.write(`${JSON.stringify(result)}\n`);
