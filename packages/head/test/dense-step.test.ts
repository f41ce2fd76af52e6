import { loadTensorFlow, type Tensor } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { denseStepper } from '../dist/dense.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

describe('fused dense training step', () => {
  it("takes the same Adam steps as tfjs's autodiff on the same model", async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 7, activation: 'relu', inputShape: [5], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const x = tf.randomNormal([16, 5], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2, 1, 0, 2, 1], 'int32'), 3).toFloat();
    const stepper = denseStepper(
      tf,
      model.getWeights().map((w) => w.clone()),
      { learningRate: 0.01 },
    );
    const optimizer = tf.train.adam(0.01);
    for (let i = 0; i < 5; i++) {
      stepper.step(x, y);
      optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.log(model.predict(x) as Tensor), undefined, undefined, tf.Reduction.MEAN) as never);
    }
    // softmaxCrossEntropy of log(softmax(z)) re-normalises exactly, so the loss is the same.
    const fused = stepper.weights();
    const reference = model.getWeights();
    for (let i = 0; i < fused.length; i++) {
      const a = await fused[i]!.data();
      const b = await reference[i]!.data();
      for (let k = 0; k < a.length; k++) expect(Math.abs(a[k]! - b[k]!)).toBeLessThan(1e-4);
    }
    stepper.dispose();
    tf.dispose([x, y, ...fused]);
  });
});
