import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flowFromDirectory } from '@featherstack/images';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaseModel, type EpochLog, trainBase, trainingFootprint, withClassifier } from '../dist/index.js';
import { SHIPPED_VAL } from '@featherstack/fixtures';

const data = SHIPPED_VAL;
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
type Flow = Awaited<ReturnType<typeof flowFromDirectory>>;
let train: Flow;
let val: Flow;

beforeAll(async () => {
  const common = { targetSize: [28, 28] as [number, number], colorMode: 'grayscale' as const, batchSize: 50, workers: 2 };
  train = await flowFromDirectory(data, { ...common, seed: 1, augment: { rescale: 1 / 255, zoomRange: 0.1 } });
  val = await flowFromDirectory(data, { ...common, shuffle: false, augment: { rescale: 1 / 255 } });
});
afterAll(() => Promise.all([train.close(), val.close()]));

const trainer = (seed: number) => withClassifier(tf, createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8, 16], dense: [32, 16], seed }), 10, seed);
const weightsOf = (m: ReturnType<typeof trainer>) => m.getWeights().map((w) => Array.from(w.dataSync()));

describe('base training', () => {
  it('resumes from the last checkpoint and ends where an uninterrupted run ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-ckpt-'));
    const whole = trainer(3);
    await trainBase(tf, whole, train, { epochs: 2, checkpointDir: join(dir, 'a') });
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['checkpoint.json', 'optimizer.bin', 'weights.bin']);
    // "Killed" after one epoch: a fresh process builds the model anew (other initial weights) and resumes.
    const first = trainer(3);
    await trainBase(tf, first, train, { epochs: 1, checkpointDir: join(dir, 'b') });
    first.dispose();
    const resumed = trainer(99);
    const history = await trainBase(tf, resumed, train, { epochs: 2, checkpointDir: join(dir, 'b'), resume: true });
    expect(history.map((h) => h.epoch)).toEqual([0, 1]);
    const a = weightsOf(whole);
    const b = weightsOf(resumed);
    for (let i = 0; i < a.length; i++) for (let k = 0; k < a[i]!.length; k++) expect(b[i]![k]).toBeCloseTo(a[i]![k]!, 5);
    whole.dispose();
    resumed.dispose();
  });

  it('validates every epoch, stops early on validation loss, logs to TensorBoard and leaks no tensors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-tb-'));
    const model = trainer(5);
    const logs: EpochLog[] = [];
    const tensors: number[] = [];
    // A learning rate far too large makes validation loss stop improving quickly.
    const history = await trainBase(tf, model, train, {
      epochs: 12,
      validation: val,
      patience: 2,
      learningRate: 0.5,
      tensorBoardDir: dir,
      onEpochEnd: (_, l) => {
        logs.push(l);
        tensors.push(tf.memory().numTensors);
      },
    });
    expect(history.every((h) => h.valLoss !== undefined && h.valAcc !== undefined)).toBe(true);
    expect(history.length).toBeLessThan(12);
    expect(logs).toEqual(history);
    expect(existsSync(dir) && readdirSync(dir, { recursive: true }).some((f) => String(f).includes('tfevents'))).toBe(true);
    // Epoch after epoch (batches, validation, TensorBoard) the tensor count stays the same.
    expect(tensors.length).toBeGreaterThanOrEqual(3);
    expect(new Set(tensors.slice(1)).size).toBe(1);
    model.dispose();
    await expect(trainBase(tf, trainer(1), train, { patience: 2 })).rejects.toThrow('options.patience must be used together with options.validation');
    await expect(trainBase(tf, trainer(1), train, { optimizer: 'adagrad' as never })).rejects.toThrow(
      "options.optimizer must be 'adam', 'sgd', 'momentum' or 'rmsprop', received \"adagrad\"",
    );
  });

  for (const engine of ['graph', 'eager'] as const) {
    it(`follows a learning-rate schedule on the ${engine} engine: epochs stepped down to a rate near 0 leave the weights as they were`, async () => {
      const one = trainer(8);
      await trainBase(tf, one, train, { epochs: 1, engine });
      const stepped = trainer(8);
      const history = await trainBase(tf, stepped, train, { epochs: 3, engine, schedule: { kind: 'step', every: 1, factor: 1e-12 } });
      expect(history.map((h) => h.lr)).toEqual([1e-3, 1e-3 * 1e-12, 1e-3 * 1e-12 ** 2]);
      const a = weightsOf(one);
      const b = weightsOf(stepped);
      for (let i = 0; i < a.length; i++) for (let k = 0; k < a[i]!.length; k += 7) expect(b[i]![k]).toBeCloseTo(a[i]![k]!, 6);
      // The same three epochs at a constant rate move them.
      const constant = trainer(8);
      await trainBase(tf, constant, train, { epochs: 3, engine });
      expect(weightsOf(constant)[0]!.some((v, k) => Math.abs(v - a[0]![k]!) > 1e-4)).toBe(true);
      for (const m of [one, stepped, constant]) m.dispose();
    });
  }

  it('keepBest ends with the best epoch by the monitor (in the checkpoint too), and writes a CSV log; plateau and best need validation', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-best-'));
    const options = { epochs: 8, validation: val, learningRate: 0.5 };
    const model = trainer(5);
    const csvLog = join(dir, 'log.csv');
    const history = await trainBase(tf, model, train, { ...options, keepBest: true, csvLog, checkpointDir: join(dir, 'ckpt') });
    const losses = history.map((h) => h.valLoss!);
    const bestEpoch = losses.indexOf(Math.min(...losses));
    expect(bestEpoch).toBeLessThan(7); // at this rate validation loss stops improving
    // The same run stopped after the best epoch has the weights keepBest ended with.
    const reference = trainer(5);
    await trainBase(tf, reference, train, { ...options, epochs: bestEpoch + 1 });
    const a = weightsOf(reference);
    const b = weightsOf(model);
    for (let i = 0; i < a.length; i++) for (let k = 0; k < a[i]!.length; k += 5) expect(b[i]![k]).toBeCloseTo(a[i]![k]!, 5);
    expect(readdirSync(join(dir, 'ckpt')).sort()).toEqual(['best.bin', 'checkpoint.json', 'optimizer.bin', 'weights.bin']);
    expect(JSON.parse(readFileSync(join(dir, 'ckpt', 'checkpoint.json'), 'utf8')).best).toMatchObject({ epoch: bestEpoch, monitor: 'val_loss' });
    const rows = readFileSync(csvLog, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('epoch,loss,acc,val_loss,val_acc,lr');
    expect(rows.slice(1).map((r) => Number(r.split(',')[3]))).toEqual(losses);
    for (const m of [model, reference]) m.dispose();
    await expect(trainBase(tf, trainer(1), train, { keepBest: true })).rejects.toThrow(
      'options.keepBest must be used together with options.validation (it watches val_loss)',
    );
    await expect(trainBase(tf, trainer(1), train, { reduceOnPlateau: { patience: 1 } })).rejects.toThrow(
      'options.reduceOnPlateau.monitor must be used together with options.validation (it watches val_loss)',
    );
  });

  it('class weights weigh each example on the graph engine (the logged loss too, as Keras), and are refused on the eager engine', async () => {
    // Adam is invariant to scaling the loss: weights of 2 for every class train the same weights, and log twice the loss.
    const plain = await trainBase(tf, trainer(6), train, { epochs: 1 });
    const doubled = trainer(6);
    const twice = Object.fromEntries(train.classNames.map((c) => [c, 2]));
    const history = await trainBase(tf, doubled, train, { epochs: 1, classWeight: twice });
    expect(history[0]!.loss / plain[0]!.loss).toBeCloseTo(2, 3);
    // One class weighed 20×: the trained base predicts it far more often than an unweighted one does.
    const favoured = train.classNames[3]!;
    const predictedAs = async (m: ReturnType<typeof trainer>) => {
      let n = 0;
      for await (const batch of val.epoch(0)) {
        const x = tf.tensor4d(batch.images, batch.shape as [number, number, number, number]);
        const classes = (m.predict(x) as import('@featherstack/tensorflow').Tensor).argMax(-1);
        for (const c of await classes.data()) if (c === 3) n++;
        tf.dispose([x, classes]);
      }
      return n;
    };
    const unweighted = trainer(6);
    await trainBase(tf, unweighted, train, { epochs: 2 });
    const weighted = trainer(6);
    await trainBase(tf, weighted, train, { epochs: 2, classWeight: { [favoured]: 20 } });
    expect(await predictedAs(weighted)).toBeGreaterThan(1.5 * (await predictedAs(unweighted)));
    for (const m of [doubled, unweighted, weighted]) m.dispose();
    await expect(trainBase(tf, trainer(1), train, { engine: 'eager', classWeight: 'balanced' })).rejects.toThrow(
      "options.classWeight must be used with the graph engine (this model trains on the eager engine, and tfjs's trainOnBatch takes no weights)",
    );
    await expect(trainBase(tf, trainer(1), train, { classWeight: { nosuchclass: 2 } })).rejects.toThrow(
      'options.classWeight.nosuchclass must be a class of the training data',
    );
  });

  it('refuses a validation flow whose classes are not the training classes (labels would be shifted)', async () => {
    const classes = train.classNames.filter((c) => c !== train.classNames[3]);
    const shifted = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 50,
      workers: 1,
      shuffle: false,
      classes,
      augment: { rescale: 1 / 255 },
    });
    try {
      await expect(trainBase(tf, trainer(1), train, { epochs: 1, validation: shifted })).rejects.toThrow(
        `options.validation must be a flow with the training classes ${JSON.stringify(train.classNames)} (validation must use the training class indices), received "${shifted.root} with ${JSON.stringify(classes).replaceAll('"', '\\"')}"`,
      );
    } finally {
      await shifted.close();
    }
  });

  it('refuses to resume a checkpoint of another architecture or image size, naming the directory and both shapes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-ckpt-shape-'));
    const model = trainer(2);
    await trainBase(tf, model, train, { epochs: 1, checkpointDir: dir });
    model.dispose();
    const other = withClassifier(tf, createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8, 16], dense: [24, 16], seed: 2 }), 10, 2);
    await expect(trainBase(tf, other, train, { epochs: 2, checkpointDir: dir, resume: true })).rejects.toThrow(
      new RegExp(
        `options\\.checkpointDir must be a checkpoint of this model \\(weight shapes .*24.*\\), received "${dir.replaceAll('/', '\\/')} with weight shapes .*32`,
      ),
    );
    other.dispose();
  });

  it('refuses a truncated checkpoint file by name instead of a typed-array error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-ckpt-trunc-'));
    const model = trainer(2);
    await trainBase(tf, model, train, { epochs: 1, checkpointDir: dir });
    truncateSync(join(dir, 'weights.bin'), 1001);
    await expect(trainBase(tf, model, train, { epochs: 2, checkpointDir: dir, resume: true })).rejects.toThrow(
      new RegExp(
        `weights\\.bin holds the \\d+ bytes its checkpoint\\.json describes \\(truncated or damaged\\), received "${dir.replaceAll('/', '\\/')}\\/weights\\.bin of 1001 bytes"`,
      ),
    );
    model.dispose();
  });

  it('refuses a loss that goes non-finite on the graph engine, and a checkpoint of NaN weights, before anything is checkpointed', async () => {
    // A pixel scale that overflows float32: every activation is ±Infinity, the loss NaN.
    const overflowing = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 50,
      workers: 1,
      augment: { rescale: 1e30 },
    });
    try {
      // (tfjs's eager loss clips probabilities, as Keras's does: there this scale trains at chance, finitely.)
      for (const engine of ['graph'] as const) {
        const dir = await mkdtemp(join(tmpdir(), 'fs-nan-'));
        const model = trainer(4);
        await expect(trainBase(tf, model, overflowing, { epochs: 2, engine, checkpointDir: dir })).rejects.toThrow(
          /^base training diverged at epoch 1, batch \d+ of 10 \(first image [^)]+\.png\): the loss is NaN\. Check the pixel scale \(augment\.rescale is 1e\+30/,
        );
        expect(existsSync(join(dir, 'checkpoint.json'))).toBe(false);
        model.dispose();
      }
    } finally {
      await overflowing.close();
    }
    // A checkpoint of the right size whose weights are NaN is refused on resume, by directory and weight.
    const dir = await mkdtemp(join(tmpdir(), 'fs-nan-ckpt-'));
    const model = trainer(5);
    await trainBase(tf, model, train, { epochs: 1, checkpointDir: dir });
    const bytes = readFileSync(join(dir, 'weights.bin'));
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(new Float32Array(bytes.byteLength / 4).fill(Number.NaN).buffer));
    await expect(trainBase(tf, model, train, { epochs: 2, checkpointDir: dir, resume: true })).rejects.toThrow(
      `checkpoint in ${dir} holds non-finite values (weight 0, ${model.weights[0]!.name}, shape [3,3,1,8]): it cannot be resumed; delete it to train from the start`,
    );
    model.dispose();
  });

  it('estimates the memory base training needs from parameters and per-image activations', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [10], units: 4 }), tf.layers.dense({ units: 2 })] });
    // 44 + 10 parameters; 4 + 2 activations an image.
    expect(trainingFootprint(model, 8)).toEqual({ bytes: 4 * (54 * 6 + 3 * 8 * 6), parameters: 54, activations: 6 });
    expect(trainingFootprint(model, 8, 3).bytes).toBe(4 * (54 * 10 + 3 * 8 * 6));
    model.dispose();
  });

  it('refuses a one-class dataset by name (a classifier needs two classes)', async () => {
    const one = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 50,
      workers: 1,
      classes: [train.classNames[0]!],
      augment: { rescale: 1 / 255 },
    });
    try {
      await expect(trainBase(tf, trainer(1), one, { epochs: 1 })).rejects.toThrow(
        `options.flow must be a dataset of at least 2 classes to train a classifier, received "${one.root} with 1 class [\\"${train.classNames[0]}\\"]"`,
      );
    } finally {
      await one.close();
    }
  });

  it('trains with another optimizer, and refuses to resume a checkpoint written by a different one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-opt-'));
    const model = trainer(8);
    const history = await trainBase(tf, model, train, { epochs: 2, optimizer: 'momentum', learningRate: 0.05, checkpointDir: dir });
    expect(history[1]!.loss).toBeLessThan(history[0]!.loss);
    await expect(trainBase(tf, trainer(8), train, { epochs: 3, checkpointDir: dir, resume: true })).rejects.toThrow(
      /options\.optimizer must be 'momentum', the optimizer of the checkpoint in .*, received "adam"/,
    );
    model.dispose();
  });
});
