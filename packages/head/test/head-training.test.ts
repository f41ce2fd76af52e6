import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensorFlow } from '@featherstack/tensorflow';
import {
  type Data,
  Field,
  FixedSizeList,
  Float32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Table,
  tableFromArrays,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { featureRecordBatch, featureSchema } from '@featherstack/common';
import { type FeatureSet, openFeatureStream, readFeatureFile, readFeatureFiles, trainHead } from '../dist/index.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

/** Writes a feature file with 3 Gaussian blobs in 8 dimensions. */
async function blobs(
  path: string,
  rows: number,
  seed: number,
  classNames = ['a', 'b', 'c'],
  edit?: (features: Float32Array) => void,
  more: { labels?: (labels: Int32Array) => void; metadata?: Record<string, string> } = {},
) {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const features = new Float32Array(rows * 8);
  const labels = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    labels[i] = i % 3;
    for (let d = 0; d < 8; d++) features[i * 8 + d] = (d % 3 === labels[i] ? 2 : 0) + (rand() - 0.5);
  }
  edit?.(features);
  more.labels?.(labels);
  const schema = featureSchema(8, new Map([['featherstack.class_names', JSON.stringify(classNames)], ...Object.entries(more.metadata ?? {})]));
  const batch = featureRecordBatch(
    schema,
    Array.from({ length: rows }, (_, i) => `img${i}.png`),
    labels,
    features,
  );
  await writeFile(path, await RecordBatchFileWriter.writeAll([batch]).toUint8Array());
}

describe('head', () => {
  it('refuses a non-finite feature by file, row and image, in memory and streamed, and stops when the loss diverges', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-nan-'));
    await blobs(join(dir, 'train.arrow'), 30, 1, undefined, (f) => {
      f[5 * 8 + 2] = Number.NaN;
    });
    await blobs(join(dir, 'val.arrow'), 9, 2);
    const message = `feature file ${join(dir, 'train.arrow')}: row 5 (img5.png) has a non-finite feature value (NaN at position 2); re-extract it, or drop the row`;
    await expect(readFeatureFile(join(dir, 'train.arrow'))).rejects.toThrow(message);
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    await expect(trainHead(tf, await openFeatureStream(join(dir, 'train.arrow'), { shuffleBuffer: 4, seed: 1 }), val, { epochs: 1 })).rejects.toThrow(message);
    // An empty file (an extraction stopped before its first batch) is named, not a crash later.
    await blobs(join(dir, 'empty.arrow'), 0, 4);
    await expect(readFeatureFile(join(dir, 'empty.arrow'))).rejects.toThrow(`feature file ${join(dir, 'empty.arrow')}: has no rows`);
    // Finite but extreme features overflow the head: training stops at the first non-finite loss.
    await blobs(join(dir, 'huge.arrow'), 30, 3, undefined, (f) => f.fill(3e38));
    await expect(trainHead(tf, await readFeatureFile(join(dir, 'huge.arrow')), val, { epochs: 3 })).rejects.toThrow(
      /head training diverged at epoch [12]: the (training|validation) loss is (NaN|Infinity) \(lower options.learningRate, now 0.001/,
    );
  });

  it('refuses train and validation files whose classes differ, naming both files and both class lists', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-classes-'));
    await blobs(join(dir, 'train.arrow'), 30, 1);
    // One class missing from validation: its indices would mean other classes.
    await blobs(join(dir, 'val.arrow'), 9, 2, ['a', 'c', 'd']);
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    await expect(trainHead(tf, train, val, { epochs: 1 })).rejects.toThrow(
      `feature file ${join(dir, 'val.arrow')}: has classes ["a","c","d"] but ${join(dir, 'train.arrow')} has ["a","b","c"]: validation must use the training classes, in the training order`,
    );
  });

  it('refuses a label that names no class, in memory and streamed, by file, row and image', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-labels-'));
    // Another tool's file: three named classes, but row 7 says 9 (a head would invent classes '3'…'9').
    await blobs(join(dir, 'train.arrow'), 30, 1, undefined, undefined, { labels: (l) => l.set([9], 7) });
    await blobs(join(dir, 'val.arrow'), 9, 2);
    const message = `feature file ${join(dir, 'train.arrow')}: row 7 (img7.png) has label 9, no class of the 3 the file names (["a","b","c"]): labels are indices 0–2`;
    await expect(readFeatureFile(join(dir, 'train.arrow'))).rejects.toThrow(message);
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    await expect(trainHead(tf, await openFeatureStream(join(dir, 'train.arrow'), { shuffleBuffer: 4 }), val, { epochs: 1 })).rejects.toThrow(message);
    // An unlabelled row (-1) is no training row either.
    await blobs(join(dir, 'unlabelled.arrow'), 30, 1, undefined, undefined, { labels: (l) => l.set([-1], 3) });
    await expect(readFeatureFile(join(dir, 'unlabelled.arrow'))).rejects.toThrow(
      `feature file ${join(dir, 'unlabelled.arrow')}: row 3 (img3.png) has label -1, an unlabelled row (a head trains on labelled rows only)`,
    );
  });

  it('reads int64 labels, and refuses null labels, null features, labels beyond int32 and 0-dimensional features by name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-types-'));
    const write = async (name: string, labels: Data, features: Data, dimension: number, format?: string) => {
      const fields = [
        new Field('label', labels.type, true),
        new Field('features', new FixedSizeList(dimension, new Field('value', new Float32(), false)), true),
      ];
      const schema = new Schema(
        fields,
        new Map([['featherstack.class_names', '["a","b"]'], ...(format ? [['featherstack.format', format] as [string, string]] : [])]),
      );
      const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: 3, nullCount: 0, children: [labels, features] }));
      await writeFile(join(dir, name), await RecordBatchFileWriter.writeAll([batch]).toUint8Array());
      return join(dir, name);
    };
    const list = (dimension: number, nullBitmap?: Uint8Array) =>
      makeData({
        type: new FixedSizeList(dimension, new Field('value', new Float32(), false)),
        length: 3,
        ...(nullBitmap ? { nullBitmap, nullCount: 1 } : { nullCount: 0 }),
        child: makeData({ type: new Float32(), length: 3 * dimension, data: Float32Array.from({ length: 3 * dimension }, (_, i) => i) }),
      });
    const int64 = (values: bigint[], nullBitmap?: Uint8Array) =>
      makeData({ type: new Int64(), length: 3, data: BigInt64Array.from(values), ...(nullBitmap ? { nullBitmap, nullCount: 1 } : { nullCount: 0 }) });
    const read = await readFeatureFile(await write('int64.arrow', int64([1n, 0n, 1n]), list(2), 2));
    expect(Array.from(read.labels)).toEqual([1, 0, 1]);
    expect(Array.from(read.features)).toEqual([0, 1, 2, 3, 4, 5]);
    // Validity bitmap 0b101: row 1 is null.
    await expect(readFeatureFile(await write('null-label.arrow', int64([1n, 0n, 1n], Uint8Array.of(0b101)), list(2), 2))).rejects.toThrow(
      'null-label.arrow: row 1 has a null label: every row needs a label and a full feature vector',
    );
    await expect(readFeatureFile(await write('null-features.arrow', int64([1n, 0n, 1n]), list(2, Uint8Array.of(0b011)), 2))).rejects.toThrow(
      'null-features.arrow: row 2 has a null features: every row needs a label and a full feature vector',
    );
    await expect(readFeatureFile(await write('wide.arrow', int64([1n, 2n ** 31n - 1n + 1n, 0n]), list(2), 2))).rejects.toThrow(
      'wide.arrow: row 1 has label 2147483648, which is no class index',
    );
    const flat = await write('flat.arrow', int64([1n, 0n, 1n]), list(0), 0);
    await expect(readFeatureFile(flat)).rejects.toThrow('flat.arrow: has 0-dimensional features: there is nothing to train a head on');
    await expect(openFeatureStream(flat)).rejects.toThrow('flat.arrow: has 0-dimensional features');
    // The format version: 1 (or none, another tool's file) is read; a newer one is refused by name.
    expect((await readFeatureFile(await write('v1.arrow', int64([1n, 0n, 1n]), list(2), 2, '1'))).rows).toBe(3);
    const v2 = await write('v2.arrow', int64([1n, 0n, 1n]), list(2), 2, '2');
    const newer = 'v2.arrow: is feature format 2, written by a newer featherstack; this one reads format 1 (upgrade featherstack, or re-extract)';
    await expect(readFeatureFile(v2)).rejects.toThrow(newer);
    await expect(openFeatureStream(v2)).rejects.toThrow(newer);
  });

  it('refuses a feature file with damaged bytes by name: no endless read, no zeros trained on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-damaged-'));
    const d = 8;
    const schema = featureSchema(d, new Map([['featherstack.class_names', '["a","b"]']]));
    const batch = featureRecordBatch(
      schema,
      Array.from({ length: 10 }, (_, i) => `x${i}.png`),
      Int32Array.from({ length: 10 }, (_, i) => i % 2),
      new Float32Array(10 * d).fill(0.5),
    );
    const good = await RecordBatchFileWriter.writeAll([batch]).toUint8Array();
    const damaged = async (name: string, at: number, value: number) => {
      const bytes = Buffer.from(good);
      bytes[at] = value;
      await writeFile(join(dir, name), bytes);
      return join(dir, name);
    };
    // A schema length with one byte zeroed: apache-arrow's reader looped for ever on it.
    const schemaLength = await damaged('schema-length.arrow', 13, 0);
    await expect(readFeatureFile(schemaLength)).rejects.toThrow(
      `feature file ${schemaLength}: is damaged: its record batch 1 of 1 does not hold a record batch message`,
    );
    // A byte of the schema's metadata: the file read as 10 rows of zeros and no labels.
    const metadata = await damaged('schema-metadata.arrow', 34, 0);
    await expect(readFeatureFile(metadata)).rejects.toThrow(`feature file ${metadata}: is damaged: its features buffer holds 0 values where its rows need 80`);
    // A row count's high byte: every check walked 2^38 rows.
    const rowCount = await damaged('row-count.arrow', 62, 64);
    await expect(readFeatureFile(rowCount)).rejects.toThrow(
      `feature file ${rowCount}: is damaged: it claims 274877906944 rows of 8 features, more than its 1202 bytes hold`,
    );
    expect((await readFeatureFile(await damaged('same.arrow', 0, good[0]!))).features).toEqual(new Float32Array(10 * d).fill(0.5));
  });

  it('refuses train and validation features of two different base models, in memory, streamed and as a file list', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-base-'));
    const [one, two] = ['1'.repeat(64), '2'.repeat(64)];
    await blobs(join(dir, 'train.arrow'), 30, 1, undefined, undefined, { metadata: { 'featherstack.base_model_sha256': one } });
    await blobs(join(dir, 'val.arrow'), 9, 2, undefined, undefined, { metadata: { 'featherstack.base_model_sha256': two } });
    const message = `feature file ${join(dir, 'val.arrow')}: was extracted by base model 222222222222… but ${join(dir, 'train.arrow')} by 111111111111…`;
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    await expect(trainHead(tf, await readFeatureFile(join(dir, 'train.arrow')), val, { epochs: 1 })).rejects.toThrow(message);
    await expect(trainHead(tf, await openFeatureStream(join(dir, 'train.arrow')), val, { epochs: 1 })).rejects.toThrow(message);
    await expect(readFeatureFiles([join(dir, 'train.arrow'), join(dir, 'val.arrow')])).rejects.toThrow(message);
    await expect(openFeatureStream([join(dir, 'train.arrow'), join(dir, 'val.arrow')])).rejects.toThrow(message);
    // The same base (or a file that records none, from another tool) trains.
    await blobs(join(dir, 'same.arrow'), 9, 2, undefined, undefined, { metadata: { 'featherstack.base_model_sha256': one } });
    await blobs(join(dir, 'plain.arrow'), 9, 2);
    for (const v of ['same.arrow', 'plain.arrow']) {
      const head = await trainHead(tf, await readFeatureFile(join(dir, 'train.arrow')), await readFeatureFile(join(dir, v)), { epochs: 1 });
      head.model.dispose();
    }
  });

  it('refuses, before allocating it, a head too large for this machine, naming the file and its dimension', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-huge-'));
    const dimension = 4_000_000;
    const write = async (name: string) => {
      const schema = featureSchema(dimension, new Map([['featherstack.class_names', '["a","b"]']]));
      const batch = featureRecordBatch(schema, ['x.png', 'y.png'], Int32Array.of(0, 1), new Float32Array(2 * dimension).fill(0.5));
      await writeFile(join(dir, name), await RecordBatchFileWriter.writeAll([batch]).toUint8Array());
    };
    await write('train.arrow');
    await write('val.arrow');
    const before = process.memoryUsage().rss;
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    await expect(trainHead(tf, train, val, { epochs: 1 })).rejects.toThrow(
      new RegExp(
        `feature file ${join(dir, 'train.arrow')}: has 4000000-dimensional features: a head of 4000000→128→2 units \\(512,000,386 parameters\\) needs about [\\d.]+ GiB to train, more than half of this machine's`,
      ),
    );
    // Refused before any of the 2 GB layer was allocated.
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 2 ** 20);
  });

  it('reads a feature file back exactly and learns separable features', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await blobs(join(dir, 'train.arrow'), 300, 1);
    await blobs(join(dir, 'val.arrow'), 90, 2);
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    expect(train).toMatchObject({ rows: 300, dimension: 8, classNames: ['a', 'b', 'c'] });
    expect(train.paths[299]).toBe('img299.png');
    expect(train.labels[4]).toBe(1);
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    const seen: { epoch: number; rows: number; epochs: number; valAcc: number }[] = [];
    const result = await trainHead(tf, train, val, { epochs: 15, units: [16], onEpochEnd: (e, l) => seen.push({ ...l, epoch: e }) });
    expect(result.valAccuracy).toBeGreaterThan(0.9);
    expect(result.history).toHaveLength(15);
    // onEpochEnd reports every epoch's scores (as in the history) and the rows it trained on.
    expect(seen.map((l) => [l.epoch, l.rows, l.epochs])).toEqual(Array.from({ length: 15 }, (_, e) => [e, 300, 15]));
    expect(seen.map((l) => l.valAcc)).toEqual(result.history.map((h) => h.valAcc));
    result.model.dispose();
  });

  it('stops early when validation loss stops improving, keeping the best epoch’s weights', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await blobs(join(dir, 'train.arrow'), 300, 1);
    await blobs(join(dir, 'val.arrow'), 90, 2);
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    // Validation labels rotated: the better the head fits the training set, the worse val loss gets.
    const misleading = { ...val, labels: val.labels.map((l) => (l + 1) % 3) };
    const result = await trainHead(tf, train, misleading, { epochs: 30, units: [16], patience: 2, learningRate: 0.01 });
    expect(result.stoppedEarly).toBe(true);
    expect(result.history.length).toBe(result.bestEpoch + 3); // two more epochs without improvement, then stop
    const losses = result.history.map((h) => h.valLoss);
    expect(losses[result.bestEpoch]).toBe(Math.min(...losses));
    // The returned model is the best epoch's: its validation accuracy is that epoch's.
    expect(result.valAccuracy).toBeCloseTo(result.history[result.bestEpoch]!.valAcc, 5);
    result.model.dispose();
    await expect(trainHead(tf, train, val, { patience: -1 })).rejects.toThrow('options.patience must be a non-negative integer, received -1');
  });

  it('takes the shared training controls: a schedule (fused and tfjs optimizers), reduce-on-plateau, keepBest by a named metric, a CSV log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-controls-'));
    await blobs(join(dir, 'train.arrow'), 300, 1);
    await blobs(join(dir, 'val.arrow'), 90, 2);
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    const misleading = { ...val, labels: val.labels.map((l) => (l + 1) % 3) };
    for (const optimizer of ['adam', 'sgd'] as const) {
      // Stepped down to a rate near 0 after epoch 1: the later epochs leave the head as it was.
      const result = await trainHead(tf, train, val, {
        epochs: 3,
        units: [8],
        optimizer,
        learningRate: 0.05,
        schedule: { kind: 'step', every: 1, factor: 1e-12 },
      });
      expect(result.history.map((h) => h.lr)).toEqual([0.05, 0.05 * 1e-12, 0.05 * 1e-12 ** 2]);
      expect(result.history[2]!.loss).toBeCloseTo(result.history[0]!.loss, 6);
      result.model.dispose();
    }
    // Validation loss rises as the head fits (rotated labels): the plateau halves the rate, keepBest keeps the best val_acc epoch.
    const csvLog = join(dir, 'head.csv');
    const result = await trainHead(tf, train, misleading, {
      epochs: 8,
      units: [16],
      learningRate: 0.01,
      reduceOnPlateau: { patience: 1, factor: 0.5 },
      keepBest: true,
      bestMonitor: 'val_acc',
      csvLog,
    });
    const rates = result.history.map((h) => h.lr);
    expect(rates[0]).toBe(0.01);
    expect(rates.at(-1)).toBeLessThan(0.01);
    const accs = result.history.map((h) => h.valAcc);
    const best = accs.indexOf(Math.max(...accs));
    expect(result.valAccuracy).toBeCloseTo(accs[best]!, 5);
    const rows = (await readFile(csvLog, 'utf8')).trim().split('\n');
    expect(rows.length).toBe(9);
    expect(rows.slice(1).map((r) => Number(r.split(',')[5]))).toEqual(rates);
    result.model.dispose();
    // class_weight: on features that carry no information (all zero), the head learns the class prior,
    // and one class weighed 30× takes nearly all of it, 30 / 32 (the fused step weighs each row's gradient).
    const noise = { ...train, features: new Float32Array(train.features.length) };
    const meanProbabilityOfC = async (options: object) => {
      const r = await trainHead(tf, noise, val, { epochs: 5, units: [8], learningRate: 0.05, ...options });
      const p = (r.model.predict(tf.zeros([val.rows, val.dimension])) as import('@featherstack/tensorflow').Tensor).slice([0, 2], [-1, 1]);
      const mean = Array.from(await p.data()).reduce((a, b) => a + b, 0) / val.rows;
      tf.dispose([p]);
      r.model.dispose();
      return mean;
    };
    expect(await meanProbabilityOfC({})).toBeLessThan(0.5);
    expect(await meanProbabilityOfC({ classWeight: { c: 30 } })).toBeGreaterThan(0.75);
    // The graph engine weighs rows for every optimizer; the eager one only in the fused Adam step.
    expect(await meanProbabilityOfC({ classWeight: { c: 30 }, optimizer: 'sgd', learningRate: 0.5 })).toBeGreaterThan(0.75);
    expect(await meanProbabilityOfC({ classWeight: { c: 30 }, engine: 'eager' })).toBeGreaterThan(0.75);
    await expect(trainHead(tf, train, val, { optimizer: 'sgd', engine: 'eager', classWeight: 'balanced' })).rejects.toThrow(
      "options.classWeight must be used with the graph engine, or a dense head and the 'adam' optimizer on the eager engine",
    );
    await expect(trainHead(tf, train, val, { reduceOnPlateau: { factor: 2 } })).rejects.toThrow(
      'options.reduceOnPlateau.factor must be a number in (0, 1), received 2',
    );
  });

  it('trains a dense head on the compiled graph, taking the steps the eager engine takes, for every optimizer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-graph-'));
    await blobs(join(dir, 'train.arrow'), 200, 1);
    await blobs(join(dir, 'val.arrow'), 60, 2);
    const train = await readFeatureFile(join(dir, 'train.arrow'));
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    const trained = async (options: Parameters<typeof trainHead>[3]) => {
      const result = await trainHead(tf, train, val, { epochs: 2, units: [16], batchSize: 16, seed: 3, ...options });
      const weights = result.model.getWeights().map((t) => Float32Array.from(t.dataSync()));
      result.model.dispose();
      return { ...result, weights };
    };
    const distance = (a: Float32Array[], b: Float32Array[]) => {
      let worst = 0;
      a.forEach((w, i) => {
        w.forEach((v, j) => {
          worst = Math.max(worst, Math.abs(v - b[i]![j]!) / (Math.abs(b[i]![j]!) + 1e-2));
        });
      });
      return worst;
    };
    for (const [optimizer, learningRate] of [
      ['adam', 0.01],
      ['sgd', 0.1],
      ['momentum', 0.05],
      ['rmsprop', 0.005],
    ] as const) {
      const graph = await trained({ optimizer, learningRate });
      const eager = await trained({ optimizer, learningRate, engine: 'eager' });
      expect(graph.engine).toBe('graph');
      expect(eager.engine).toBe('eager');
      expect(distance(graph.weights, eager.weights), optimizer).toBeLessThan(1e-3);
      // The same scores each epoch, and a rate 10 % off is told apart: the comparison can fail.
      for (const [e, h] of graph.history.entries()) expect(h.valLoss).toBeCloseTo(eager.history[e]!.valLoss, 4);
      const off = await trained({ optimizer, learningRate: learningRate * 1.1, engine: 'eager' });
      expect(distance(graph.weights, off.weights), optimizer).toBeGreaterThan(1e-2);
    }
    // Recurrent heads have no graph: they train eagerly, and asking for the graph is refused by name.
    const recurrent = await trainHead(tf, train, val, { epochs: 1, recurrent: { kind: 'gru', units: 4, timesteps: 2 } });
    expect(recurrent.engine).toBe('eager');
    recurrent.model.dispose();
    await expect(trainHead(tf, train, val, { engine: 'graph', recurrent: { kind: 'gru', units: 4, timesteps: 2 } })).rejects.toThrow(
      "options.engine must be 'eager' with a recurrent head (the graph compiler has no GRU or LSTM)",
    );
    await expect(trainHead(tf, train, val, { engine: 'fast' as never })).rejects.toThrow("options.engine must be 'graph' or 'eager', received \"fast\"");
  });

  it('reads a directory of feature files (shards) as one dataset and trains on it exactly as on their concatenation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await blobs(join(dir, 'all.arrow'), 150, 4);
    const all = await readFeatureFile(join(dir, 'all.arrow'));
    const shards = join(dir, 'shards');
    await mkdir(shards);
    const schema = featureSchema(8, new Map([['featherstack.class_names', JSON.stringify(all.classNames)]]));
    for (const [name, from, to] of [
      ['part-0.arrow', 0, 90],
      ['part-1.arrow', 90, 150],
    ] as const) {
      const batch = featureRecordBatch(schema, all.paths.slice(from, to), all.labels.slice(from, to), all.features.slice(from * 8, to * 8));
      await writeFile(join(shards, name), await RecordBatchFileWriter.writeAll([batch]).toUint8Array());
    }
    const joined = await readFeatureFiles(shards);
    expect(joined.rows).toBe(150);
    expect(Array.from(joined.features)).toEqual(Array.from(all.features));
    expect(joined.paths).toEqual(all.paths);
    const train = async (set: typeof all) => {
      const { model } = await trainHead(tf, set, set, { epochs: 2, units: [8], seed: 3 });
      const w = model.getWeights().map((t) => Array.from(t.dataSync()));
      model.dispose();
      return w;
    };
    expect(await train(joined)).toEqual(await train(all));
    await writeFile(
      join(shards, 'part-2.arrow'),
      await RecordBatchFileWriter.writeAll([featureRecordBatch(featureSchema(4, new Map()), ['x'], Int32Array.of(0), new Float32Array(4))]).toUint8Array(),
    );
    await expect(readFeatureFiles(shards)).rejects.toThrow(/feature file .*part-2\.arrow: has 4-dimensional features but .*part-0\.arrow has 8/);
  });

  it('trains from files larger than memory: batch by batch through a seeded shuffle buffer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    const shards = join(dir, 'shards');
    await mkdir(shards);
    await blobs(join(shards, 'a.arrow'), 200, 11);
    await blobs(join(shards, 'b.arrow'), 160, 12);
    await blobs(join(dir, 'val.arrow'), 90, 13);
    const val = await readFeatureFile(join(dir, 'val.arrow'));
    const stream = await openFeatureStream(shards, { shuffleBuffer: 50, seed: 2 });
    expect(stream).toMatchObject({ dimension: 8, classNames: ['a', 'b', 'c'] });
    // Every row once per epoch, in a different order each epoch, the same order for the same seed.
    const labelsOf = async (s: typeof stream, epoch: number) => {
      const out: number[] = [];
      for await (const b of s.batches(epoch)) out.push(...b.labels);
      return out;
    };
    const e0 = await labelsOf(stream, 0);
    const all = await readFeatureFiles(shards);
    expect([...e0].sort()).toEqual(Array.from(all.labels).sort());
    expect(await labelsOf(stream, 1)).not.toEqual(e0);
    expect(await labelsOf(await openFeatureStream(shards, { shuffleBuffer: 50, seed: 2 }), 0)).toEqual(e0);
    const rowsPerEpoch: number[] = [];
    const result = await trainHead(tf, stream, val, { epochs: 8, units: [16], onEpochEnd: (_, l) => rowsPerEpoch.push(l.rows) });
    expect(result.valAccuracy).toBeGreaterThan(0.9);
    expect(rowsPerEpoch).toEqual(Array(8).fill(360));
    expect(Number.isNaN(result.history[0]!.loss)).toBe(true); // no training set in memory to score
    result.model.dispose();
    await expect(openFeatureStream(shards, { shuffleBuffer: 0 })).rejects.toThrow('options.shuffleBuffer must be a positive integer (rows), received 0');
  });

  it('trains a recurrent (GRU or LSTM) head on sequence features', async () => {
    // Rows of 4 timesteps × 2 values; the class is the timestep (0, 1 or 2) where value 0 peaks.
    const rows = 240;
    let s = 5;
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    const make = (n: number): FeatureSet => {
      const features = new Float32Array(n * 8);
      const labels = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        labels[i] = i % 3;
        for (let t = 0; t < 4; t++) {
          features[i * 8 + t * 2] = (t === labels[i] ? 2 : 0) + rand() * 0.5;
          features[i * 8 + t * 2 + 1] = rand();
        }
      }
      return { path: 'synthetic', rows: n, dimension: 8, features, labels, paths: [], classNames: ['t0', 't1', 't2'] };
    };
    for (const kind of ['gru', 'lstm'] as const) {
      const result = await trainHead(tf, make(rows), make(90), { epochs: 12, units: [], learningRate: 0.02, recurrent: { kind, units: 8, timesteps: 4 } });
      expect(result.valAccuracy).toBeGreaterThan(0.9);
      expect(result.model.layers.map((l) => l.getClassName())).toContain(kind === 'gru' ? 'GRU' : 'LSTM');
      result.model.dispose();
    }
    await expect(trainHead(tf, make(10), make(10), { recurrent: { kind: 'gru', units: 4, timesteps: 3 } })).rejects.toThrow(
      /options\.recurrent must be .*timesteps dividing the feature dimension 8/,
    );
    // Timesteps default to the sequence shape the feature file declares (featherstack.sequence).
    const declared = { ...make(rows), sequence: [4, 2] as [number, number] };
    const fromFile = await trainHead(tf, declared, make(90), { epochs: 12, units: [], learningRate: 0.02, recurrent: { kind: 'gru', units: 8 } });
    expect(fromFile.valAccuracy).toBeGreaterThan(0.9);
    fromFile.model.dispose();
    // Other optimizers train through tfjs layers.
    const momentum = await trainHead(tf, make(rows), make(90), { epochs: 12, units: [8], learningRate: 0.05, optimizer: 'momentum' });
    expect(momentum.valAccuracy).toBeGreaterThan(0.6);
    momentum.model.dispose();
  });

  it('is reproducible for a seed (its own seeded shuffle, not Math.random)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await blobs(join(dir, 'train.arrow'), 120, 3);
    const set = await readFeatureFile(join(dir, 'train.arrow'));
    const weights = async (seed: number) => {
      const { model } = await trainHead(tf, set, set, { epochs: 3, units: [8], seed });
      const w = model.getWeights().map((t) => Array.from(t.dataSync()));
      model.dispose();
      return w;
    };
    const a = await weights(5);
    expect(await weights(5)).toEqual(a);
    expect(await weights(6)).not.toEqual(a);
  });

  it('names the file and the problem for missing, non-Arrow and wrongly shaped feature files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await expect(readFeatureFile(join(dir, 'missing.arrow'))).rejects.toThrow(/feature file .*missing\.arrow: cannot be read \(ENOENT\)/);
    await writeFile(join(dir, 'text.arrow'), 'not arrow at all');
    await expect(readFeatureFile(join(dir, 'text.arrow'))).rejects.toThrow(
      /feature file .*text\.arrow: is not an Arrow IPC file \(it does not start with ARROW1\)/,
    );
    const wrong = tableFromArrays({ label: Int32Array.of(1, 2), features: Float32Array.of(1, 2) });
    await writeFile(join(dir, 'wrong.arrow'), tableToIPC(wrong, 'file'));
    await expect(readFeatureFile(join(dir, 'wrong.arrow'))).rejects.toThrow(/wrong\.arrow: column 'features' must be FixedSizeList<Float32>, found Float32/);
    const noLabel = tableFromArrays({ features: Float32Array.of(1) });
    await writeFile(join(dir, 'nolabel.arrow'), tableToIPC(noLabel, 'file'));
    await expect(readFeatureFile(join(dir, 'nolabel.arrow'))).rejects.toThrow(/nolabel\.arrow: has no 'label' column \(columns: features\)/);
    // One schema check (common's readFeatureSchema) for every reader: the streamed reader says the same.
    await expect(openFeatureStream(join(dir, 'wrong.arrow'))).rejects.toThrow(/wrong\.arrow: column 'features' must be FixedSizeList<Float32>, found Float32/);
    await expect(openFeatureStream(join(dir, 'nolabel.arrow'))).rejects.toThrow(/nolabel\.arrow: has no 'label' column \(columns: features\)/);
    const good = featureRecordBatch(
      featureSchema(1, new Map([['featherstack.class_names', '["a","b"]']])),
      ['p', 'q'],
      Int32Array.of(0, 1),
      Float32Array.of(1, 2),
    );
    const floatLabels = new Table({ label: vectorFromArray(Float64Array.of(0.5, 1.5)), features: good.getChild('features')! });
    await writeFile(join(dir, 'float-labels.arrow'), tableToIPC(floatLabels, 'file'));
    for (const read of [readFeatureFile, openFeatureStream])
      await expect(read(join(dir, 'float-labels.arrow'))).rejects.toThrow(/float-labels\.arrow: column 'label' must be an integer column, found Float64/);
    // Truncated mid-batch (a copy cut short): named, not half-read.
    await blobs(join(dir, 'whole.arrow'), 60, 1);
    const bytes = await readFile(join(dir, 'whole.arrow'));
    await writeFile(join(dir, 'cut.arrow'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(readFeatureFile(join(dir, 'cut.arrow'))).rejects.toThrow(
      /feature file .*cut\.arrow: is truncated or damaged: its \d+ bytes end without the Arrow file footer/,
    );
    await expect(openFeatureStream(join(dir, 'cut.arrow'))).rejects.toThrow(
      /feature file .*cut\.arrow: is truncated or damaged: its \d+ bytes end without the Arrow file footer/,
    );
  });

  it('leaks no tensors: training and disposing a head leaves the count where it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-head-'));
    await blobs(join(dir, 't.arrow'), 90, 5);
    const set = await readFeatureFile(join(dir, 't.arrow'));
    const before = tf.memory().numTensors;
    for (const options of [
      { epochs: 3, units: [8] },
      { epochs: 2, units: [], patience: 0 },
      { epochs: 2, units: [], recurrent: { kind: 'gru' as const, units: 4, timesteps: 2 } },
      { epochs: 2, units: [8], engine: 'eager' as const, keepBest: true },
      { epochs: 2, units: [8], optimizer: 'sgd' as const, engine: 'eager' as const },
    ]) {
      const { model } = await trainHead(tf, set, set, options);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    // Aborted mid-training: rejects with the reason and leaves nothing behind either.
    await expect(trainHead(tf, set, set, { epochs: 3, signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
    // Refused options are refused before the head is built: nothing to leak.
    await expect(trainHead(tf, set, set, { patience: -1 })).rejects.toThrow('options.patience must be a non-negative integer');
    await expect(trainHead(tf, set, set, { engine: 'fast' as never })).rejects.toThrow("options.engine must be 'graph' or 'eager'");
    expect(tf.memory().numTensors).toBe(before);
  });
});
