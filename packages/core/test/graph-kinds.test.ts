// Every layer kind of the graph compiler, forward, against tfjs's own predict on the same weights:
// small functional models with branches, merges and nested models, random weights (BatchNormalization
// statistics included, so that a fold that ignored them would fail).
import { loadTensorFlow } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { compileModel, GraphReplicas } from '../dist/internal.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
type Sym = ReturnType<typeof tf.input>;
type Layer = { apply(x: Sym | Sym[]): unknown };
const on = (layer: Layer, x: Sym | Sym[]) => layer.apply(x) as Sym;

/** A seeded normal generator (Box–Muller over mulberry32). */
function normal(seed: number) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { uniform, next: () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform()) };
}

/** Random weights; variances in [0.5, 1.5] so that every BatchNormalization statistic matters. */
function randomise(model: ReturnType<typeof tf.model>, seed = 1) {
  const r = normal(seed);
  const weights = model.weights.map((w) => {
    const shape = w.shape as number[]; // weights have fully known shapes
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: size }, () => (w.name.includes('variance') ? 0.5 + r.uniform() : 0.4 * r.next()));
    return tf.tensor(values, shape);
  });
  model.setWeights(weights);
  tf.dispose(weights);
}

/** The compiled graph's output and tfjs's predict on a random batch; returns both and the graph. */
async function compare(model: ReturnType<typeof tf.model>, options: { precision?: 'float32' | 'mixed-bfloat16'; rows?: number } = {}) {
  randomise(model);
  const compiled = compileModel(model, { train: false, ...(options.precision ? { precision: options.precision } : {}) });
  const rows = options.rows ?? 3;
  const r = normal(7);
  const shape = compiled.inputShape;
  const x = Float32Array.from({ length: rows * shape.reduce((a, b) => a * b, 1) }, () => r.next());
  const replicas = GraphReplicas.open(compiled, { replicas: 1, threadsPerReplica: 1 });
  const out = new Float32Array(rows * compiled.outputSize);
  try {
    await replicas.setWeights(model.getWeights().map((w) => w.dataSync() as Float32Array));
    await replicas.predict(x, rows, out);
  } finally {
    await replicas.close();
  }
  const expected = tf.tidy(() => (model.predict(tf.tensor(x, [rows, ...shape])) as ReturnType<typeof tf.tensor>).dataSync() as Float32Array);
  const scale = Math.max(...expected.map(Math.abs), 1e-6);
  const error = Math.max(...out.map((v, i) => Math.abs(v - expected[i]!)));
  model.dispose();
  return { out, expected, relative: error / scale, compiled };
}

const input = (shape: number[]) => tf.input({ shape });

describe('graph compiler layer kinds (forward, against tfjs)', () => {
  it('Conv2D with same/valid padding, strides, dilation, no bias, relu6, and strided 1×1 convolutions', async () => {
    const x = input([9, 11, 3]);
    let h = on(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', strides: 2, activation: 'relu6' }), x);
    h = on(tf.layers.conv2d({ filters: 5, kernelSize: [2, 3], dilationRate: 2, useBias: false }), h);
    // 1×1, strided with 'same' and 'valid' padding (compiled as a strided slice and a matrix product).
    h = on(tf.layers.conv2d({ filters: 6, kernelSize: 1, strides: 2, padding: 'same', activation: 'relu' }), h);
    h = on(tf.layers.conv2d({ filters: 3, kernelSize: 1, strides: [1, 2], padding: 'valid' }), h);
    const { relative } = await compare(tf.model({ inputs: x, outputs: h }));
    expect(relative).toBeLessThan(1e-5);
  });

  it('DepthwiseConv2D and Conv2D with BatchNormalization folded in, and a standalone BatchNormalization', async () => {
    const x = input([10, 10, 3]);
    let h = on(tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', useBias: false }), x);
    h = on(tf.layers.batchNormalization({ epsilon: 1e-3 }), h);
    h = on(tf.layers.reLU({ maxValue: 6 }), h);
    h = on(tf.layers.conv2d({ filters: 4, kernelSize: 1 }), h);
    h = on(tf.layers.batchNormalization({ epsilon: 1e-5, scale: false }), h);
    const bn = on(tf.layers.batchNormalization({ center: false }), on(tf.layers.activation({ activation: 'relu' }), h));
    const { relative, compiled } = await compare(tf.model({ inputs: x, outputs: bn }));
    expect(relative).toBeLessThan(1e-5);
    expect(compiled.folded).toBe(2);
  });

  it('SeparableConv2D, ZeroPadding2D (asymmetric), Cropping2D and same-padded pooling', async () => {
    const x = input([8, 9, 2]);
    let h = on(
      tf.layers.zeroPadding2d({
        padding: [
          [1, 2],
          [0, 1],
        ],
      }),
      x,
    );
    h = on(tf.layers.separableConv2d({ filters: 3, kernelSize: 3, depthMultiplier: 2, activation: 'tanh' }), h);
    h = on(
      tf.layers.cropping2D({
        cropping: [
          [1, 0],
          [0, 2],
        ],
      }),
      h,
    );
    h = on(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), h);
    h = on(tf.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same' }), h);
    const { relative } = await compare(tf.model({ inputs: x, outputs: h }));
    expect(relative).toBeLessThan(1e-5);
  });

  it('merges (Add, Subtract, Multiply with a broadcast squeeze-and-excite, Average, Maximum, Minimum, Concatenate) over branches', async () => {
    const x = input([6, 6, 4]);
    const a = on(tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }), x);
    const b = on(tf.layers.conv2d({ filters: 4, kernelSize: 1 }), x);
    const se = on(
      tf.layers.reshape({ targetShape: [1, 1, 4] }),
      on(tf.layers.dense({ units: 4, activation: 'sigmoid' }), on(tf.layers.globalAveragePooling2d({}), a)),
    );
    const excited = on(tf.layers.multiply(), [a, se]);
    const merged = [
      on(tf.layers.add(), [excited, b, x]),
      on(tf.layers.average(), [a, b]),
      on(tf.layers.maximum(), [a, b]),
      on(tf.layers.minimum(), [a, x]),
      on(tf.layers.multiply(), [a, b]),
    ];
    const out = on(tf.layers.concatenate({ axis: -1 }), merged);
    const { relative } = await compare(tf.model({ inputs: x, outputs: out }));
    expect(relative).toBeLessThan(1e-5);
  });

  it('every activation of the table by name, and the LeakyReLU, ELU, ReLU(maxValue) and Softmax layers', async () => {
    const x = input([12]);
    const names = [
      'linear',
      'relu',
      'relu6',
      'elu',
      'selu',
      'sigmoid',
      'tanh',
      'softplus',
      'softsign',
      'softmax',
      'swish',
      'mish',
      'hardSigmoid',
      'gelu',
      'gelu_new',
    ];
    const outs = names.map((activation) => on(tf.layers.activation({ activation: activation as never }), x));
    outs.push(on(tf.layers.leakyReLU({ alpha: 0.1 }), x), on(tf.layers.elu({}), x), on(tf.layers.reLU({ maxValue: 2.5 }), x), on(tf.layers.softmax({}), x));
    const { relative } = await compare(tf.model({ inputs: x, outputs: on(tf.layers.concatenate({}), outs) }));
    expect(relative).toBeLessThan(1e-5);
  });

  it('Rescaling, Reshape, Flatten, GlobalMaxPooling2D and a softmax Dense top', async () => {
    const x = input([4, 6, 3]);
    let h = on(tf.layers.rescaling({ scale: 1 / 127.5, offset: -1 }), x);
    h = on(tf.layers.reshape({ targetShape: [6, 4, 3] }), h);
    const pooled = on(tf.layers.globalMaxPooling2d({}), h);
    const flat = on(tf.layers.flatten(), h);
    const top = on(tf.layers.dense({ units: 5, activation: 'softmax' }), on(tf.layers.concatenate({}), [pooled, flat]));
    const { relative, out } = await compare(tf.model({ inputs: x, outputs: top }));
    expect(relative).toBeLessThan(1e-5);
    expect(out.slice(0, 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  it('a model nested as a layer inside a functional model', async () => {
    const inner = input([8, 8, 3]);
    const body = on(tf.layers.batchNormalization({}), on(tf.layers.conv2d({ filters: 4, kernelSize: 3, useBias: false }), inner));
    const backbone = tf.model({ inputs: inner, outputs: on(tf.layers.activation({ activation: 'swish' }), body), name: 'backbone' });
    const x = input([8, 8, 3]);
    const features = on(tf.layers.globalAveragePooling2d({}), backbone.apply(x) as Sym);
    const { relative, compiled } = await compare(tf.model({ inputs: x, outputs: on(tf.layers.dense({ units: 3 }), features) }));
    expect(relative).toBeLessThan(1e-5);
    expect(compiled.layers).toBe(5);
  });

  it('mixed-bfloat16 stays close to float32', async () => {
    const x = input([8, 8, 3]);
    const h = on(tf.layers.batchNormalization({}), on(tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }), x));
    const { relative } = await compare(tf.model({ inputs: x, outputs: on(tf.layers.globalAveragePooling2d({}), h) }), { precision: 'mixed-bfloat16' });
    expect(relative).toBeLessThan(3e-2);
  });

  it('refuses a layer it has no translation for, naming the layer and its class', () => {
    const x = input([4, 4, 2]);
    const model = tf.model({ inputs: x, outputs: on(tf.layers.upSampling2d({ size: [2, 2], name: 'upsample' }), x) });
    expect(() => compileModel(model, { train: false })).toThrow(
      /layer 'upsample' \(UpSampling2D\): no graph translation \(the graph engine compiles Activation, Add/,
    );
    model.dispose();
  });
});
