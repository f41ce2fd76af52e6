/**
 * A fused training step for dense heads. tfjs-node runs every op through the engine and N-API
 * (~25 µs each, measured) and `model.fit` adds its own per-batch bookkeeping: ~6 ms per step of
 * the seed's 64 → 128 → 10 head at batch 32, 3–4× Keras's graph-mode step. Here the whole model
 * lives in one flat parameter vector, the backward pass is written out (matmuls, ReluGrad) and
 * Adam updates that one vector, so a step is ~40 kernels instead of ~150.
 *
 * The mathematics are Keras's: softmax cross-entropy averaged over the batch, Adam with
 * α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ), m ← m + (g−m)(1−β₁), v ← v + (g²−v)(1−β₂), p ← p − α·m/(√v + ε).
 * @internal
 */
import { reluGrad, type Tensor, type Tf } from '@featherstack/tensorflow';

export interface DenseStepper {
  /** One Adam step on a batch (x: [B, D], y: one-hot [B, C]; w: each row's loss weight [B], class_weight). */
  step(x: Tensor, y: Tensor, w?: Tensor): void;
  /** Replaces the weights (the optimizer's moments are kept). */
  load(weights: Tensor[]): void;
  /** The current weights as [kernel, bias] pairs, for LayersModel.setWeights. */
  weights(): Tensor[];
  dispose(): void;
}

/**
 * @param initial kernels and biases of the dense layers in order ([D, H1], [H1], …, [Hn, C], [C]);
 *   every layer but the last is ReLU, the last is softmax.
 */
export function denseStepper(tf: Tf, initial: Tensor[], options: { learningRate: number; beta1?: number; beta2?: number; epsilon?: number }): DenseStepper {
  const shapes = initial.map((w) => w.shape);
  const sizes = initial.map((w) => w.size);
  // tf.variable shares its initial tensor's data: the initial tensors are released right away.
  const variableOf = (make: () => Tensor) => {
    const value = tf.tidy(make);
    const variable = tf.variable(value);
    value.dispose();
    return variable;
  };
  const params = variableOf(() => tf.concat(initial.map((w) => w.reshape([-1]))));
  const m = variableOf(() => tf.zerosLike(params));
  const v = variableOf(() => tf.zerosLike(params));
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.999;
  const eps = options.epsilon ?? 1e-7;
  const layers = shapes.length / 2;
  let t = 0;
  return {
    step(x, y, w) {
      t++;
      const alpha = (options.learningRate * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
      tf.tidy(() => {
        const parts = tf.split(params, sizes).map((p, i) => p.reshape(shapes[i]!));
        // Forward, keeping each layer's input.
        const inputs: Tensor[] = [x];
        let h = x;
        for (let l = 0; l < layers; l++) {
          const z = tf.add(tf.matMul(h, parts[2 * l]!), parts[2 * l + 1]!);
          h = l < layers - 1 ? tf.relu(z) : tf.softmax(z);
          if (l < layers - 1) inputs.push(h);
        }
        // d(mean CE)/d(logits) = (softmax − y) / B (each row times its weight); then back through each layer.
        let d = tf.div(tf.sub(h, y), x.shape[0]!);
        if (w) d = tf.mul(d, w.reshape([-1, 1]));
        const grads: Tensor[] = new Array(2 * layers);
        for (let l = layers - 1; l >= 0; l--) {
          grads[2 * l] = tf.matMul(inputs[l]!, d, true, false);
          grads[2 * l + 1] = tf.sum(d, 0);
          if (l > 0) d = reluGrad(tf, tf.matMul(d, parts[2 * l]!, false, true), inputs[l]!);
        }
        const g = tf.concat(grads.map((gr) => gr.reshape([-1])));
        m.assign(tf.add(m, tf.mul(tf.sub(g, m), 1 - b1)));
        v.assign(tf.add(v, tf.mul(tf.sub(tf.square(g), v), 1 - b2)));
        params.assign(tf.sub(params, tf.mul(tf.div(m, tf.add(tf.sqrt(v), eps)), alpha)));
      });
    },
    load(weights) {
      tf.tidy(() => params.assign(tf.concat(weights.map((w) => w.reshape([-1])))));
    },
    weights() {
      return tf.tidy(() => tf.split(params, sizes).map((p, i) => p.reshape(shapes[i]!)));
    },
    dispose() {
      params.dispose();
      m.dispose();
      v.dispose();
    },
  };
}
