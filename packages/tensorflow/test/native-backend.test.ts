import { describe, expect, it } from 'vitest';
import { assertNativeBackend, loadTensorFlow, tensorflowReport } from '../dist/index.js';

describe('native TensorFlow', () => {
  it('loads the native tensorflow backend and reports where it came from', () => {
    const report = tensorflowReport({ intraOpThreads: 2, interOpThreads: 1 });
    expect(report.backend).toBe('tensorflow');
    expect(report.tensorflowVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(['download', 'wheel']).toContain(report.provisionedFrom);
    expect(report.threads).toEqual({ intraOp: 2, interOp: 1 });
    expect(process.env.TF_NUM_INTRAOP_THREADS).toBe('2');
  });

  it('refuses to reload with different thread settings instead of ignoring them', () => {
    expect(() => loadTensorFlow({ intraOpThreads: 1 })).toThrow(/already loaded.*read once/);
  });

  it('refuses any backend but the native one', () => {
    expect(() => assertNativeBackend('cpu')).toThrow(/'cpu', not native 'tensorflow'/);
    expect(() => assertNativeBackend('wasm')).toThrow(/never trains on the JS backends/);
    expect(() => assertNativeBackend('tensorflow')).not.toThrow();
  });

  it('trains a conv layer: gradients flow to the kernel and the loss falls', async () => {
    const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, activation: 'relu', seed: 1 } as never),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, activation: 'softmax' }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    // Class 0: a bright top half; class 1: a bright bottom half.
    const xs = tf.tidy(() => {
      const top = tf.concat([tf.ones([16, 6, 12, 1]), tf.zeros([16, 6, 12, 1])], 1);
      const bottom = tf.reverse(top, 1);
      return tf.concat([top, bottom], 0).add(tf.randomUniform([32, 12, 12, 1], 0, 0.2, 'float32', 7));
    });
    const ys = tf.oneHot(tf.tensor1d([...Array(16).fill(0), ...Array(16).fill(1)], 'int32'), 2);
    const kernel = model.layers[0]!.getWeights()[0]!;
    const before = kernel.dataSync<'float32'>().slice();
    const loss = (): number => (model.evaluate(xs, ys) as import('@tensorflow/tfjs-node').Tensor).dataSync()[0]!;
    const initialLoss = loss();
    for (let i = 0; i < 30; i++) await model.trainOnBatch(xs, ys);
    const after = model.layers[0]!.getWeights()[0]!.dataSync<'float32'>();
    const moved = after.reduce((sum, v, i) => sum + Math.abs(v - before[i]!), 0);
    expect(moved).toBeGreaterThan(1e-3);
    expect(loss()).toBeLessThan(initialLoss * 0.5);
  });
});

describe('native gradients', () => {
  it("ReLU's gradient is TensorFlow's ReluGrad (not tfjs's six-op Step chain) and equals dy where x > 0, else 0", async () => {
    const tf = loadTensorFlow();
    const x = tf.tensor1d([-2, -0.5, 0, 0.5, 3]);
    const dy = tf.tensor1d([1, 2, 3, 4, 5]);
    const grad = tf.grad((v) => tf.relu(v).mul(dy).sum());
    const profile = await tf.profile(() => grad(x));
    expect(Array.from(await (profile.result as ReturnType<typeof tf.tensor1d>).data())).toEqual([0, 0, 0, 4, 5]);
    // ReluGrad runs directly on the binding, outside tfjs's kernel registry, so the profile shows
    // only what is gone: the Step kernel and its Select.
    const names = profile.kernels.map((k) => k.name);
    expect(names).not.toContain('Step');
    expect(names).not.toContain('Select');
  });
});
