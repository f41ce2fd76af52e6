/**
 * A model's forward pass for inference, on the compiled graph (the thread plan's replicas) where
 * the model compiles, else tfjs's eager predict: what predict and evaluate run a stacked model on.
 * The graph is also the path that keeps 1×1 convolutions off oneDNN's faulty primitive.
 */
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import { type EngineOptions, openReplicas } from './engines.js';

export interface Predictor {
  readonly engine: 'graph' | 'eager';
  /** Why the graph engine did not run (the layer that sent the model to eager). */
  readonly fallback?: string;
  /** The model's output for `rows` images of `x` (row order kept). */
  predict(x: Float32Array, rows: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * @example
 * const predictor = await modelPredictor(tf, stacked);
 * const probabilities = await predictor.predict(batch.images, batch.size);
 * await predictor.close();
 */
export async function modelPredictor(tf: Tf, model: LayersModel, options: Omit<EngineOptions, 'seed'> = {}): Promise<Predictor> {
  const { replicas, fallback } = await openReplicas(model, options, { train: false });
  const shape = (model.inputs[0]!.shape as number[]).slice(1);
  if (replicas) {
    return {
      engine: 'graph',
      async predict(x, rows) {
        const out = new Float32Array(rows * replicas.compiled.outputSize);
        await replicas.predict(x, rows, out);
        return out;
      },
      close: () => replicas.close(),
    };
  }
  return {
    engine: 'eager',
    ...(fallback ? { fallback } : {}),
    async predict(x, rows) {
      const y = tf.tidy(() => model.predict(tf.tensor4d(x, [rows, ...shape] as [number, number, number, number])) as Tensor);
      const values = (await y.data()) as Float32Array;
      y.dispose();
      return values;
    },
    close: async () => {},
  };
}
