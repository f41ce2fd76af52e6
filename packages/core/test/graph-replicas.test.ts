import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flowFromDirectory } from '@featherstack/images';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { tableFromIPC } from 'apache-arrow';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaseModel, type EpochLog, extractFeatures, featureExtractor, trainBase, withClassifier } from '../dist/index.js';
import { compileModel, GraphReplicas } from '../dist/internal.js';
import { SHIPPED_VAL } from '@featherstack/fixtures';

const data = SHIPPED_VAL;
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
type Flow = Awaited<ReturnType<typeof flowFromDirectory>>;
let train: Flow;
let plain: Flow;

beforeAll(async () => {
  const common = { targetSize: [28, 28] as [number, number], colorMode: 'grayscale' as const, batchSize: 50, workers: 2 };
  train = await flowFromDirectory(data, { ...common, seed: 1, augment: { rescale: 1 / 255, zoomRange: 0.1, horizontalFlip: true } });
  plain = await flowFromDirectory(data, { ...common, shuffle: false, augment: { rescale: 1 / 255 } });
});
afterAll(() => Promise.all([train.close(), plain.close()]));

const trainer = (seed: number) => withClassifier(tf, createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8, 16], dense: [32, 16], seed }), 10, seed);
const weightsOf = (m: ReturnType<typeof trainer>) => m.getWeights().map((w) => Float32Array.from(w.dataSync()));

/**
 * One epoch of SGD on each engine from the same initial weights: SGD follows the gradient exactly,
 * so the two agree only where the graph's hand-written gradients equal tfjs's automatic ones.
 */
async function sgdOnBothEngines(build: () => ReturnType<typeof trainer>, flow: Flow, learningRate: number) {
  const run = async (engine: 'graph' | 'eager') => {
    const model = build();
    const losses: number[] = [];
    const history = await trainBase(tf, model, flow, { epochs: 1, engine, optimizer: 'sgd', learningRate, onBatch: (p) => losses.push(p.loss) });
    const weights = weightsOf(model);
    model.dispose();
    return { losses, weights, engine: history[0]!.engine };
  };
  return { graph: await run('graph'), eager: await run('eager') };
}

/** Every weight of every layer where the other engine took it: within 1e-4 absolute plus 1e-3 relative. */
function expectSameWeights(graph: Float32Array[], eager: Float32Array[]): void {
  expect(graph.length).toBe(eager.length);
  for (let i = 0; i < eager.length; i++) {
    const [a, b] = [graph[i]!, eager[i]!];
    const worst = a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!) / (1e-4 + 1e-3 * Math.abs(b[k]!))), 0);
    expect(worst, `weight ${i}`).toBeLessThan(1);
  }
}

/** Trains a fresh model (same initial weights every call) and returns the loss after every batch. */
async function run(options: Parameters<typeof trainBase>[3]) {
  const model = trainer(11);
  const losses: number[] = [];
  const history = await trainBase(tf, model, train, { epochs: 2, ...options, onBatch: (p) => losses.push(p.loss) });
  const weights = weightsOf(model);
  model.dispose();
  return { losses, history, weights };
}

describe('graph engine and data-parallel replicas', () => {
  it('trains on N replicas as one replica does at the same global batch, and deterministically for a given N', async () => {
    const one = await run({ replicas: 1, threadsPerReplica: 1 });
    const two = await run({ replicas: 2, threadsPerReplica: 1 });
    const again = await run({ replicas: 2, threadsPerReplica: 1 });
    expect(one.history.map((h) => [h.engine, h.replicas])).toEqual([
      ['graph', 1],
      ['graph', 1],
    ]);
    expect(two.history.map((h) => [h.engine, h.replicas])).toEqual([
      ['graph', 2],
      ['graph', 2],
    ]);
    expect(one.losses).toHaveLength(20);
    // Learning happened, and the two layouts followed the same trajectory (summation order aside).
    expect(one.history[1]!.loss).toBeLessThan(one.history[0]!.loss);
    for (let i = 0; i < one.losses.length; i++) expect(Math.abs(two.losses[i]! - one.losses[i]!)).toBeLessThan(1e-3 * one.losses[i]!);
    for (let i = 0; i < one.weights.length; i++)
      for (let k = 0; k < one.weights[i]!.length; k += 7) expect(two.weights[i]![k]).toBeCloseTo(one.weights[i]![k]!, 3);
    // The same N twice: bit-identical losses and weights.
    expect(again.losses).toEqual(two.losses);
    expect(again.weights).toEqual(two.weights);
    // Adam hides a wrongly scaled gradient (it divides by the gradient's own magnitude); SGD does not.
    const sgdOne = await run({ replicas: 1, threadsPerReplica: 1, optimizer: 'sgd', learningRate: 0.5 });
    const sgdTwo = await run({ replicas: 2, threadsPerReplica: 1, optimizer: 'sgd', learningRate: 0.5 });
    expect(sgdOne.history[1]!.loss).toBeLessThan(sgdOne.history[0]!.loss);
    for (let i = 0; i < sgdOne.losses.length; i++) expect(Math.abs(sgdTwo.losses[i]! - sgdOne.losses[i]!)).toBeLessThan(1e-3 * sgdOne.losses[i]!);
  });

  it("computes the eager engine's loss and trains to a similar point", async () => {
    const graph = await run({ engine: 'graph', replicas: 1, epochs: 1 });
    const eager = await run({ engine: 'eager', epochs: 1 });
    expect(eager.history[0]!.engine).toBe('eager');
    // The first batch's loss is the initial weights' loss: the same function in both engines.
    expect(graph.losses[0]).toBeCloseTo(eager.losses[0]!, 4);
    // Adam differs only in where epsilon enters (TensorFlow's ApplyAdam vs tfjs): same trajectory within noise.
    expect(Math.abs(graph.history[0]!.loss - eager.history[0]!.loss)).toBeLessThan(0.05 * eager.history[0]!.loss);
  });

  it('keeps a trained model after an abort, and resumes a checkpoint only on the engine that wrote it', async () => {
    const model = trainer(4);
    const before = weightsOf(model);
    const controller = new AbortController();
    await expect(
      trainBase(tf, model, train, {
        epochs: 1,
        replicas: 2,
        threadsPerReplica: 1,
        signal: controller.signal,
        onBatch: (p) => p.batch === 3 && controller.abort(new Error('stop here')),
      }),
    ).rejects.toThrow('stop here');
    expect(weightsOf(model)[0]).not.toEqual(before[0]);
    const dir = await mkdtemp(join(tmpdir(), 'fs-engine-'));
    await trainBase(tf, model, train, { epochs: 1, checkpointDir: dir });
    await expect(trainBase(tf, trainer(4), train, { epochs: 2, engine: 'eager', checkpointDir: dir, resume: true })).rejects.toThrow(
      /options\.engine must be 'graph', the engine that wrote the checkpoint in .*, received "eager"/,
    );
    const resumed = trainer(4);
    const history = await trainBase(tf, resumed, train, { epochs: 2, checkpointDir: dir, resume: true, replicas: 2, threadsPerReplica: 1 });
    expect(history.map((h: EpochLog) => h.epoch)).toEqual([0, 1]);
    model.dispose();
    resumed.dispose();
  });

  it('trains BatchNormalization on batch statistics with the gradients and moving averages tfjs computes', async () => {
    const build = () => {
      const input = tf.input({ shape: [28, 28, 1] });
      const seeded = (seed: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed }) });
      let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, name: 'conv', ...seeded(1) }).apply(input) as ReturnType<typeof tf.input>;
      // A momentum far from 1 moves the moving averages visibly in one epoch.
      x = tf.layers.batchNormalization({ name: 'norm', momentum: 0.8 }).apply(x) as typeof x;
      x = tf.layers.reLU().apply(x) as typeof x;
      x = tf.layers.conv2d({ filters: 6, kernelSize: 3, name: 'conv2', ...seeded(2) }).apply(x) as typeof x;
      x = tf.layers.batchNormalization({ name: 'norm2', momentum: 0.8 }).apply(x) as typeof x;
      x = tf.layers.globalAveragePooling2d({}).apply(x) as typeof x;
      const features = tf.layers.dense({ units: 8, activation: 'relu', name: 'features', ...seeded(3) }).apply(x) as typeof x;
      return withClassifier(tf, tf.model({ inputs: input, outputs: features }), 10, 4);
    };
    const { graph, eager } = await sgdOnBothEngines(build, train, 0.1);
    expect(graph.engine).toBe('graph');
    const initial = build();
    const names = initial.weights.map((w) => w.name);
    const start = weightsOf(initial);
    initial.dispose();
    // γ, β and both moving statistics moved (a missing gradient or update would agree with nothing).
    for (const role of ['norm/gamma', 'norm/beta', 'norm/moving_mean', 'norm/moving_variance', 'norm2/moving_mean']) {
      const i = names.findIndex((n) => n.includes(role));
      expect(i, role).toBeGreaterThanOrEqual(0);
      expect(
        graph.weights[i]!.some((v, k) => Math.abs(v - start[i]![k]!) > 1e-3),
        role,
      ).toBe(true);
    }
    for (let i = 0; i < graph.losses.length; i++) expect(graph.losses[i]).toBeCloseTo(eager.losses[i]!, 3);
    expectSameWeights(graph.weights, eager.weights);
  });

  it('trains BatchNormalization on N replicas as one replica does at the same global batch, and deterministically for a given N', async () => {
    const build = () => {
      const input = tf.input({ shape: [28, 28, 1] });
      let x = tf.layers.conv2d({ filters: 8, kernelSize: 3, useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }).apply(input);
      x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x);
      x = tf.layers.reLU({ maxValue: 6 }).apply(x);
      x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x);
      x = tf.layers.flatten().apply(x);
      x = tf.layers.dense({ units: 16, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x);
      x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x);
      const features = tf.layers.activation({ activation: 'relu', name: 'features' }).apply(x);
      return withClassifier(tf, tf.model({ inputs: input, outputs: features as ReturnType<typeof tf.input> }), 10, 3);
    };
    const trainOn = async (replicas: number, optimizer: 'adam' | 'sgd' = 'adam') => {
      const model = build();
      const losses: number[] = [];
      const history = await trainBase(tf, model, train, {
        epochs: 2,
        replicas,
        threadsPerReplica: 1,
        optimizer,
        learningRate: optimizer === 'sgd' ? 0.2 : 1e-3,
        onBatch: (p) => losses.push(p.loss),
      });
      const weights = weightsOf(model);
      model.dispose();
      return { losses, history, weights };
    };
    const one = await trainOn(1);
    const two = await trainOn(2);
    const again = await trainOn(2);
    expect(two.history.map((h) => [h.engine, h.replicas])).toEqual([
      ['graph', 2],
      ['graph', 2],
    ]);
    expect(one.history[1]!.loss).toBeLessThan(one.history[0]!.loss);
    // Statistics over the global batch, not each replica's slice: the same losses and weights
    // (moving averages included) within summation order. Per-slice statistics differ by far more.
    for (let i = 0; i < one.losses.length; i++) expect(Math.abs(two.losses[i]! - one.losses[i]!)).toBeLessThan(1e-3 * one.losses[i]!);
    expectSameWeights(two.weights, one.weights);
    expect(again.losses).toEqual(two.losses);
    expect(again.weights).toEqual(two.weights);
    // Three replicas (more than this machine's cores allow trainBase: the replica set itself),
    // uneven slices (16, 17, 17 rows) and a batch of one row, where two replicas get none.
    const model = build();
    const initial = weightsOf(model);
    const stepOn = async (replicas: number) => {
      const set = GraphReplicas.open(compileModel(model, { train: true, loss: 'categorical', optimizer: 'sgd', replicas }), { replicas, threadsPerReplica: 1 });
      try {
        await set.setWeights(initial);
        await set.setSlots();
        let seed = 5; // the same pixels for every replica count (a linear congruential generator)
        const uniform = () => {
          seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
          return seed / 4294967296;
        };
        const losses: number[] = [];
        for (const rows of [50, 1, 50]) {
          const x = Float32Array.from({ length: rows * 784 }, uniform);
          const y = new Float32Array(rows * 10);
          for (let i = 0; i < rows; i++) y[i * 10 + (i % 10)] = 1;
          losses.push((await set.trainStep(x, y, rows, { learningRate: 0.1, iteration: losses.length + 1 })).lossSum);
        }
        return { losses, weights: await set.getWeights() };
      } finally {
        await set.close();
      }
    };
    const single = await stepOn(1);
    const three = await stepOn(3);
    model.dispose();
    for (let i = 0; i < 3; i++) expect(Math.abs(three.losses[i]! - single.losses[i]!)).toBeLessThan(1e-4 * single.losses[i]!);
    expectSameWeights(three.weights, single.weights);
    const sgdOne = await trainOn(1, 'sgd');
    const sgdTwo = await trainOn(2, 'sgd');
    for (let i = 0; i < sgdOne.losses.length; i++) expect(Math.abs(sgdTwo.losses[i]! - sgdOne.losses[i]!)).toBeLessThan(1e-3 * sgdOne.losses[i]!);
  });

  it('refuses unreasonable replica, thread and engine options, naming them', async () => {
    await expect(trainBase(tf, trainer(1), train, { replicas: 500 })).rejects.toThrow(
      /replicas \(--replicas\) must be at most \d+ on this machine .*received 500/,
    );
    await expect(trainBase(tf, trainer(1), train, { replicas: 0 })).rejects.toThrow('replicas (--replicas) must be a positive integer, received 0');
    await expect(trainBase(tf, trainer(1), train, { threadsPerReplica: 1.5 })).rejects.toThrow(
      'threads per replica (--tf-threads) must be a positive integer, received 1.5',
    );
    await expect(trainBase(tf, trainer(1), train, { engine: 'eager', replicas: 2 })).rejects.toThrow("options.replicas must be 1 with engine 'eager'");
    await expect(trainBase(tf, trainer(1), train, { engine: 'xla' as never })).rejects.toThrow(`options.engine must be 'graph' or 'eager', received "xla"`);
  });

  it('extracts on replicas in the flow’s row order, with the eager engine’s values', async () => {
    const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8, 16], dense: [32, 16], seed: 2 });
    const extractor = featureExtractor(tf, base);
    const dir = await mkdtemp(join(tmpdir(), 'fs-extract-'));
    await extractFeatures(tf, extractor, plain, join(dir, 'eager.arrow'), { engine: 'eager' });
    await extractFeatures(tf, extractor, plain, join(dir, 'graph.arrow'), { replicas: 2, threadsPerReplica: 1 });
    const eager = tableFromIPC(await readFile(join(dir, 'eager.arrow')));
    const graph = tableFromIPC(await readFile(join(dir, 'graph.arrow')));
    expect(graph.numRows).toBe(500);
    expect(graph.getChild('path')!.toArray()).toEqual(eager.getChild('path')!.toArray());
    expect(graph.schema.metadata.get('featherstack.base_model_sha256')).toBe(eager.schema.metadata.get('featherstack.base_model_sha256'));
    const a = eager.getChild('features')!;
    const b = graph.getChild('features')!;
    // Every row: a misplaced or unwritten slice shows as the rows it touched.
    const wrong: string[] = [];
    for (let row = 0; row < 500; row++) {
      const x = a.get(row)!.toArray() as Float32Array;
      const y = b.get(row)!.toArray() as Float32Array;
      for (let k = 0; k < x.length; k++) if (Math.abs(y[k]! - x[k]!) > 1e-4) wrong.push(`row ${row} [${k}]: ${y[k]} vs ${x[k]}`);
    }
    expect(wrong.slice(0, 10), `${wrong.length} values differ`).toEqual([]);
    base.dispose();
  });
});

describe('mixed precision', () => {
  it('trains in bfloat16 with float32 weights, close to the float32 trajectory, and refuses it on the eager engine', async () => {
    const f32 = await run({ replicas: 1, epochs: 1 });
    const bf16 = await run({ replicas: 1, epochs: 1, precision: 'mixed-bfloat16' });
    // bfloat16 keeps 8 bits of mantissa: the first loss agrees to ~1 %, and the epoch still learns.
    expect(Math.abs(bf16.losses[0]! - f32.losses[0]!)).toBeLessThan(0.01 * f32.losses[0]!);
    expect(bf16.losses.at(-1)!).toBeLessThan(bf16.losses[0]!);
    expect(Math.abs(bf16.history[0]!.loss - f32.history[0]!.loss)).toBeLessThan(0.05 * f32.history[0]!.loss);
    // Master weights stay float32: updates smaller than bfloat16's resolution still accumulate.
    expect(bf16.weights[0]!.some((w) => Math.fround(w) !== bfloat16(w))).toBe(true);
    await expect(trainBase(tf, trainer(1), train, { engine: 'eager', precision: 'mixed-bfloat16' })).rejects.toThrow(
      "options.precision must be 'float32' with engine 'eager'",
    );
    await expect(trainBase(tf, trainer(1), train, { precision: 'float16' as never })).rejects.toThrow(
      `options.precision must be 'float32' or 'mixed-bfloat16', received "float16"`,
    );
  });
});

/** `v` rounded to bfloat16 (the top 16 bits of its float32, round to nearest even). */
function bfloat16(v: number): number {
  const u = new Uint32Array(Float32Array.of(v).buffer);
  const rounded = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(Uint32Array.of(rounded >>> 0).buffer)[0]!;
}

describe('a loaded tfjs model on the graph engine', () => {
  it('trains depthwise and separable convolutions with the gradients tfjs computes (strides, same padding, a depth multiplier, relu6)', async () => {
    const build = () => {
      const input = tf.input({ shape: [28, 28, 1] });
      let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input);
      x = tf.layers
        .depthwiseConv2d({
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          depthMultiplier: 2,
          activation: 'relu6',
          depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }),
          biasInitializer: tf.initializers.randomNormal({ seed: 3, stddev: 0.1 }),
        })
        .apply(x);
      x = tf.layers
        .separableConv2d({
          filters: 6,
          kernelSize: 3,
          activation: 'tanh',
          depthwiseInitializer: tf.initializers.glorotUniform({ seed: 4 }),
          pointwiseInitializer: tf.initializers.glorotUniform({ seed: 5 }),
        })
        .apply(x);
      x = tf.layers.globalAveragePooling2d({}).apply(x);
      x = tf.layers.dense({ units: 8, activation: 'relu', name: 'features', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(x);
      return withClassifier(tf, tf.model({ inputs: input, outputs: x as never }), 10, 7);
    };
    // SGD follows the gradient exactly: after an epoch the engines agree only if the depthwise and
    // separable gradients written into the graph equal tfjs's automatic ones.
    const { graph, eager } = await sgdOnBothEngines(build, train, 0.5);
    expect(graph.engine).toBe('graph');
    // The depthwise and separable kernels moved (a zero gradient would agree with nothing).
    const initial = build();
    const start = weightsOf(initial);
    initial.dispose();
    for (const i of [2, 4, 5])
      expect(
        graph.weights[i]!.some((v, k) => Math.abs(v - start[i]![k]!) > 1e-4),
        `weight ${i}`,
      ).toBe(true);
    for (let i = 0; i < graph.losses.length; i++) expect(graph.losses[i]).toBeCloseTo(eager.losses[i]!, 3);
    expectSameWeights(graph.weights, eager.weights);
  });

  it('trains swish, selu, softplus, softsign, gelu, hard swish, Maximum, Average and global max pooling with the gradients tfjs computes', async () => {
    const { registerKerasExtensions } = await import('../dist/index.js');
    const { flowFromArray } = await import('@featherstack/images');
    registerKerasExtensions(tf);
    // Random pixels: no flat regions, so no exact ties for the maxima and no activation exactly at a
    // kink, where tfjs's gradients and TensorFlow's (which Keras uses) are defined differently.
    let s = 12345;
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    const noise = flowFromArray(
      { data: Float32Array.from({ length: 400 * 16 * 16 }, rand), shape: [400, 16, 16, 1] },
      { y: Array.from({ length: 400 }, (_, i) => (i * 7) % 10), batchSize: 40, shuffle: false, workers: 1 },
    );
    const init = (seed: number) => ({
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
      biasInitializer: tf.initializers.randomNormal({ seed, stddev: 0.1 }),
    });
    const build = () => {
      const input = tf.input({ shape: [16, 16, 1] });
      const x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'swish', ...init(1) }).apply(input);
      const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'selu', ...init(2) }).apply(x);
      const b = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'softplus', ...init(3) }).apply(x);
      const c = tf.layers.conv2d({ filters: 4, kernelSize: 1, activation: 'hardSwish' as never, ...init(4) }).apply(x);
      // softplus often wins the maximum: selu also reaches the average, so that both kernels train.
      const merged = tf.layers.average().apply([tf.layers.maximum().apply([a, b] as never) as never, a, c] as never);
      let y = tf.layers.globalMaxPooling2d({}).apply(merged);
      y = tf.layers.dense({ units: 12, activation: 'gelu' as never, ...init(5) }).apply(y);
      y = tf.layers.dense({ units: 8, activation: 'softsign', name: 'features', ...init(6) }).apply(y);
      return withClassifier(tf, tf.model({ inputs: input, outputs: y as never }), 10, 7);
    };
    try {
      const { graph, eager } = await sgdOnBothEngines(build, noise, 0.2);
      expect(graph.engine).toBe('graph');
      const initial = build();
      const start = weightsOf(initial);
      initial.dispose();
      for (let i = 0; i < start.length; i++)
        expect(
          graph.weights[i]!.some((v, k) => Math.abs(v - start[i]![k]!) > 1e-5),
          `weight ${i} moved`,
        ).toBe(true);
      for (let i = 0; i < graph.losses.length; i++) expect(graph.losses[i]).toBeCloseTo(eager.losses[i]!, 3);
      expectSameWeights(graph.weights, eager.weights);
    } finally {
      await noise.close();
    }
  });

  it('scores validation without dropout, as Keras does, while training steps drop', async () => {
    const build = () => {
      const input = tf.input({ shape: [28, 28, 1] });
      let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input);
      x = tf.layers.flatten().apply(x);
      x = tf.layers.dropout({ rate: 0.8 }).apply(x);
      x = tf.layers.dense({ units: 8, activation: 'relu', name: 'features', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x);
      return withClassifier(tf, tf.model({ inputs: input, outputs: x as never }), 10, 3);
    };
    // A rate too small to move the weights: both engines score the same model on the validation set.
    const score = async (engine: 'graph' | 'eager') => {
      const model = build();
      const [log] = await trainBase(tf, model, train, { epochs: 1, engine, learningRate: 1e-30, validation: plain });
      model.dispose();
      return log!;
    };
    const graph = await score('graph');
    const eager = await score('eager');
    expect(graph.engine).toBe('graph');
    expect(graph.valLoss!).toBeCloseTo(eager.valLoss!, 4);
    expect(graph.valAcc!).toBeCloseTo(eager.valAcc!, 4);
    // Training steps do drop: their running loss differs from the dropout-free validation score.
    expect(Math.abs(graph.loss - graph.valLoss!)).toBeGreaterThan(1e-3);
  });

  it('trains a saved model of other layers (same padding, strides, average and global pooling, tanh, dropout) with the gradients tfjs computes', async () => {
    const build = (dropout: number) => {
      const input = tf.input({ shape: [28, 28, 1] });
      let x = tf.layers
        .conv2d({ filters: 6, kernelSize: 3, padding: 'same', strides: 2, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })
        .apply(input);
      x = tf.layers.averagePooling2d({ poolSize: 2 }).apply(x);
      x = tf.layers.conv2d({ filters: 8, kernelSize: 3, activation: 'elu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x);
      x = tf.layers.globalAveragePooling2d({}).apply(x);
      x = tf.layers.dropout({ rate: dropout }).apply(x);
      x = tf.layers.dense({ units: 12, activation: 'relu6', name: 'features', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(x);
      return tf.model({ inputs: input, outputs: x as never });
    };
    const dir = await mkdtemp(join(tmpdir(), 'fs-loaded-'));
    await build(0).save(`file://${dir}`);
    const { loadBaseModel } = await import('../dist/index.js');
    // SGD follows the gradient exactly: after 10 steps the engines agree only if every layer's
    // hand-written gradient equals tfjs's automatic one.
    const losses = async (engine: 'graph' | 'eager') => {
      const base = await loadBaseModel(tf, join(dir, 'model.json'));
      const model = withClassifier(tf, base, 10, 7);
      const out: number[] = [];
      await trainBase(tf, model, train, {
        epochs: 1,
        engine,
        optimizer: 'sgd',
        learningRate: 0.5,
        onBatch: (p) => out.push(p.loss),
        ...(engine === 'graph' ? { replicas: 2, threadsPerReplica: 1 } : {}),
      });
      const weights = weightsOf(model);
      model.dispose();
      return { losses: out, weights };
    };
    const graph = await losses('graph');
    const eager = await losses('eager');
    expect(graph.losses.at(-1)!).toBeLessThan(graph.losses[0]!);
    for (let i = 0; i < graph.losses.length; i++) expect(graph.losses[i]).toBeCloseTo(eager.losses[i]!, 3);
    // Every weight, of every layer, where tfjs's own gradients took it.
    expectSameWeights(graph.weights, eager.weights);
    // Dropout trains (masks drawn in the graph, seeded), and its model still compiles.
    const dropped = withClassifier(tf, build(0.3), 10);
    const history = await trainBase(tf, dropped, train, { epochs: 2, replicas: 2, threadsPerReplica: 1 });
    expect(history.map((h) => h.engine)).toEqual(['graph', 'graph']);
    expect(history[1]!.loss).toBeLessThan(history[0]!.loss);
    dropped.dispose();
  });
});
