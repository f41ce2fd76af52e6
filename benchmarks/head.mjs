#!/usr/bin/env node
// Head training from feature files: rows/s (training rows × epochs ÷ seconds, validation scored
// every epoch) and final validation accuracy of featherstack's trainHead — from memory and streamed
// from the Arrow file — against tfjs's own model.fit on the same features (the baseline, same run)
// and the seed's Keras head.fit (peer). Rows interleaved over repeats; medians reported.
//
//   node benchmarks/head.mjs [--data DIR] [--epochs 10] [--batch-size 32] [--repeats 3]
//        [--no-peers] [--json FILE] [--markdown FILE] [--chart FILE.png]
//
// DIR holds train/ and val/ class folders; their features come from the seed CNN trained one epoch.
// Every timed row includes building its model. The in-memory trainHead row also scores the whole
// training set after each epoch (its reported training loss); the streamed row cannot, so the two
// differ by that work as well as by reading the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, PEER_OPTION, runPeer } from './lib.mjs';
import { SHIPPED_DATASET } from '@featherstack/fixtures';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: SHIPPED_DATASET },
    epochs: { type: 'string', default: '10' },
    'batch-size': { type: 'string', default: '32' },
    repeats: { type: 'string', default: '3' },
    ...PEER_OPTION,
    ...OUTPUT_OPTIONS,
  },
});
const data = resolve(values.data);
const epochs = Number(values.epochs);
const batchSize = Number(values['batch-size']);
const repeats = Number(values.repeats);
const { cores } = machine();

const { flowFromDirectory } = await import('@featherstack/images');
const { loadTensorFlow } = await import('@featherstack/tensorflow');
const { createBaseModel, extractFeatures, featureExtractor, trainBase, withClassifier } = await import('@featherstack/core');
const { openFeatureStream, readFeatureFile, trainHead } = await import('@featherstack/head');
const { barChart, svgToPng } = await import('@featherstack/report');
const tf = loadTensorFlow({ intraOpThreads: cores });
const dir = mkdtempSync(join(tmpdir(), 'featherstack-head-'));

try {
  // Features worth classifying: the seed CNN after one epoch, extracted to Arrow files.
  const common = { targetSize: [28, 28], colorMode: 'grayscale', seed: 1 };
  const trainFlow = await flowFromDirectory(join(data, 'train'), { ...common, batchSize: 32, shuffle: true, augment: { rescale: 1 / 255 } });
  const base = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 1 });
  await trainBase(tf, withClassifier(tf, base, trainFlow.classNames.length, 2), trainFlow, { epochs: 1 });
  await trainFlow.close();
  const files = {};
  for (const split of ['train', 'val']) {
    const flow = await flowFromDirectory(join(data, split), { ...common, batchSize: 256, shuffle: false, augment: { rescale: 1 / 255 } });
    files[split] = join(dir, `${split}.arrow`);
    await extractFeatures(tf, featureExtractor(tf, base), flow, files[split]);
    await flow.close();
  }
  const train = await readFeatureFile(files.train);
  const val = await readFeatureFile(files.val);
  const classes = train.classNames.length;
  // The same features as raw little-endian arrays for the Python peer.
  writeFileSync(join(dir, 'train.f32'), train.features);
  writeFileSync(join(dir, 'train.i32'), train.labels);
  writeFileSync(join(dir, 'val.f32'), val.features);
  writeFileSync(join(dir, 'val.i32'), val.labels);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ dimension: train.dimension, classes }));
  log(
    `head: ${train.rows} train / ${val.rows} val rows × ${train.dimension}, ${classes} classes, ${epochs} epochs, batch ${batchSize}, ${cores} cores, ${repeats} interleaved repeats`,
  );

  const rowsDone = train.rows * epochs;
  const timed = async (fn) => {
    const started = performance.now();
    const valAccuracy = await fn();
    return { rowsPerSecond: rowsDone / ((performance.now() - started) / 1000), valAccuracy };
  };
  const rows = {
    memory: (r) =>
      timed(async () => {
        const head = await trainHead(tf, train, val, { epochs, batchSize, seed: 7 + r });
        head.model.dispose();
        return head.valAccuracy;
      }),
    // Before the compiled head: the same trainHead on the eager engine (the fused Adam step).
    eager: (r) =>
      timed(async () => {
        const head = await trainHead(tf, train, val, { epochs, batchSize, seed: 7 + r, engine: 'eager' });
        head.model.dispose();
        return head.valAccuracy;
      }),
    stream: (r) =>
      timed(async () => {
        const stream = await openFeatureStream(files.train, { batchSize, seed: 7 + r });
        const head = await trainHead(tf, stream, val, { epochs, batchSize, seed: 7 + r });
        head.model.dispose();
        return head.valAccuracy;
      }),
    // The baseline: tfjs's layers API doing the same work the usual way.
    layersFit: () =>
      timed(async () => {
        const model = tf.sequential({
          layers: [
            tf.layers.dense({ units: 128, activation: 'relu', inputShape: [train.dimension] }),
            tf.layers.dense({ units: classes, activation: 'softmax' }),
          ],
        });
        model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
        const [x, y, vx, vy] = [
          tf.tensor2d(train.features, [train.rows, train.dimension]),
          tf.tensor1d(train.labels, 'float32'),
          tf.tensor2d(val.features, [val.rows, val.dimension]),
          tf.tensor1d(val.labels, 'float32'),
        ];
        const history = await model.fit(x, y, { epochs, batchSize, shuffle: true, validationData: [vx, vy], verbose: 0 });
        tf.dispose([x, y, vx, vy]);
        model.dispose();
        return history.history.val_acc.at(-1);
      }),
  };
  // Every repeat draws new initial weights and a new order, on every row (accuracy varies by ±0.01 with the seed here).
  for (const fn of Object.values(rows)) await fn(-1); // warm-up: kernels, file cache
  const runs = Object.fromEntries(Object.keys(rows).map((k) => [k, []]));
  let keras;
  const kerasRuns = { rowsPerSecond: [], valAccuracy: [] };
  for (let r = 0; r < repeats; r++) {
    for (const [name, fn] of Object.entries(rows)) runs[name].push(await fn(r));
    // The peer inside the repeat, with its own warm-up fit, so drift lands on it as on the other rows.
    keras = runPeer('keras_stages.py', ['--stage', 'head', '--features', dir, '--epochs', epochs, '--batch', batchSize, '--seed', 7 + r], {
      enabled: !values['no-peers'],
    });
    if (keras.status === 'ok') {
      kerasRuns.rowsPerSecond.push(keras.rowsPerSecond[0]);
      kerasRuns.valAccuracy.push(keras.valAccuracy[0]);
    }
    log(
      `repeat ${r + 1}: ${Object.entries(runs)
        .map(([k, v]) => `${k} ${v.at(-1).rowsPerSecond.toFixed(0)} rows/s (acc ${v.at(-1).valAccuracy.toFixed(3)})`)
        .join(', ')}, keras ${keras.status === 'ok' ? kerasRuns.rowsPerSecond.at(-1).toFixed(0) : keras.status}`,
    );
  }
  if (kerasRuns.rowsPerSecond.length === repeats) keras = { ...keras, ...kerasRuns };
  else if (keras.status === 'ok') keras = { status: 'failed', reason: 'the Keras peer failed in some repeats' };
  const summary = (list) => ({
    rowsPerSecond: Math.round(median(list.map((x) => x.rowsPerSecond))),
    valAccuracy: Number(median(list.map((x) => x.valAccuracy)).toFixed(4)),
  });
  const result = {
    benchmark: 'head',
    data,
    trainRows: train.rows,
    valRows: val.rows,
    dimension: train.dimension,
    epochs,
    batchSize,
    repeats,
    ...machine(),
    featherstack: summary(runs.memory),
    featherstackEager: summary(runs.eager),
    featherstackStream: summary(runs.stream),
    tfjsLayersFit: summary(runs.layersFit),
    keras:
      keras.status === 'ok' ? { rowsPerSecond: Math.round(median(keras.rowsPerSecond)), valAccuracy: Number(median(keras.valAccuracy).toFixed(4)) } : keras,
    runs,
  };
  const baseline = result.tfjsLayersFit.rowsPerSecond;
  result.ratios = {
    overLayersFit: Number((result.featherstack.rowsPerSecond / baseline).toFixed(2)),
    overEager: Number((result.featherstack.rowsPerSecond / result.featherstackEager.rowsPerSecond).toFixed(2)),
    streamOverLayersFit: Number((result.featherstackStream.rowsPerSecond / baseline).toFixed(2)),
    overKeras: keras.status === 'ok' ? Number((result.featherstack.rowsPerSecond / result.keras.rowsPerSecond).toFixed(2)) : null,
  };
  const line = (label, r) => `| ${label} | ${r.rowsPerSecond} | ${(r.rowsPerSecond / baseline).toFixed(2)} | ${r.valAccuracy.toFixed(4)} |`;
  const md = [
    `Head training (dense 128 → softmax, Adam 1e-3, batch ${batchSize}, ${epochs} epochs, validation every epoch) on ${train.rows} × ${train.dimension} features, ${cores} cores: rows/s, median of ${repeats} interleaved repeats.`,
    '',
    '| head training | rows/s | ÷ tfjs model.fit | val accuracy |',
    '|---|---:|---:|---:|',
    line('tfjs-node layers model.fit (baseline)', result.tfjsLayersFit),
    line('featherstack trainHead, eager engine (fused Adam step)', result.featherstackEager),
    line('featherstack trainHead, graph engine, features in memory', result.featherstack),
    line('featherstack trainHead, graph engine, streamed from the Arrow file', result.featherstackStream),
    keras.status === 'ok' ? line("Keras head.fit (the seed's)", result.keras) : `| Keras head.fit | ${keras.status} (${keras.reason}) | | |`,
    '',
    `featherstack (graph, in memory) ÷ tfjs model.fit: **${result.ratios.overLayersFit}×**${result.ratios.overKeras ? `, ÷ Keras: **${result.ratios.overKeras}×** (Keras's time ÷ featherstack's: ${(1 / result.ratios.overKeras).toFixed(2)}×)` : ''}; graph ÷ eager engine: ${result.ratios.overEager}×.`,
    '',
  ].join('\n');
  if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
  if (values.markdown) writeFileSync(values.markdown, md);
  if (values.chart) {
    const svg = barChart({
      title: `Head training rows/s (${train.rows} rows × ${epochs} epochs, batch ${batchSize})`,
      unit: 'rows/s',
      bars: [
        { label: 'tfjs model.fit', value: result.tfjsLayersFit.rowsPerSecond, color: '#888' },
        { label: 'featherstack eager', value: result.featherstackEager.rowsPerSecond, color: '#9ecae1' },
        { label: 'featherstack', value: result.featherstack.rowsPerSecond },
        { label: 'featherstack stream', value: result.featherstackStream.rowsPerSecond },
        { label: 'Keras', value: keras.status === 'ok' ? result.keras.rowsPerSecond : Number.NaN, color: '#d62728' },
      ],
    });
    writeFileSync(values.chart, await svgToPng(svg));
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
