/** The head: a dense classifier trained on feature vectors. */
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import { FeatureFileError, invalidOption } from './errors.js';
import type { FeatureSet } from './features.js';

export interface HeadOptions {
  /** Hidden dense layers (ReLU). Default [128] — the seed's head. */
  units?: number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
}

export interface HeadResult {
  model: LayersModel;
  history: { epoch: number; loss: number; acc: number; valLoss: number; valAcc: number }[];
  valAccuracy: number;
  seconds: number;
}

/** A seeded Fisher–Yates permutation of 0…n-1 (mulberry32). */
function permutation(n: number, seed: number): Int32Array {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

function positiveInt(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 1) throw invalidOption(name, 'a positive integer', value);
  return value as number;
}

/**
 * Trains the head on `train` and reports accuracy on `val` after every epoch.
 *
 * @example
 * const { valAccuracy } = await trainHead(tf, await readFeatureFile(a), await readFeatureFile(b));
 */
export async function trainHead(tf: Tf, train: FeatureSet, val: FeatureSet, options: HeadOptions = {}): Promise<HeadResult> {
  const started = performance.now();
  const units = options.units ?? [128];
  if (!Array.isArray(units) || units.some((u) => !Number.isInteger(u) || u < 1)) throw invalidOption('units', 'an array of positive integers', units);
  const epochs = positiveInt('epochs', options.epochs, 10);
  const batchSize = positiveInt('batchSize', options.batchSize, 32);
  const lr = options.learningRate ?? 1e-3;
  if (!(lr > 0)) throw invalidOption('learningRate', 'a positive number', lr);
  if (val.dimension !== train.dimension) {
    throw new FeatureFileError(val.path, `has ${val.dimension}-dimensional features but ${train.path} has ${train.dimension}`);
  }
  let maxLabel = -1;
  for (const set of [train, val]) for (const label of set.labels) if (label > maxLabel) maxLabel = label;
  const numClasses = Math.max(train.classNames.length, maxLabel + 1);
  let seed = options.seed ?? 7;
  const model = tf.sequential({ name: 'head' });
  units.forEach((u, i) => {
    model.add(
      tf.layers.dense({
        units: u,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
        ...(i === 0 ? { inputShape: [train.dimension] } : {}),
      }),
    );
  });
  model.add(
    tf.layers.dense({
      units: numClasses,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }),
      ...(units.length === 0 ? { inputShape: [train.dimension] } : {}),
    }),
  );
  model.compile({ optimizer: tf.train.adam(lr), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const xs = tf.tensor2d(train.features, [train.rows, train.dimension]);
  const ys = tf.tensor1d(Float32Array.from(train.labels));
  const vx = tf.tensor2d(val.features, [val.rows, val.dimension]);
  const vy = tf.tensor1d(Float32Array.from(val.labels));
  const history: HeadResult['history'] = [];
  try {
    // tfjs's own `shuffle: true` draws from Math.random; a seeded permutation per epoch makes the
    // head reproducible for a given seed.
    for (let e = 0; e < epochs; e++) {
      const order = tf.tensor1d(permutation(train.rows, seed * 7919 + e), 'int32');
      const [px, py] = tf.tidy(() => [tf.gather(xs, order), tf.gather(ys, order)]);
      order.dispose();
      try {
        const fit = await model.fit(px!, py!, { epochs: 1, batchSize, shuffle: false, validationData: [vx, vy], verbose: 0 });
        const h = fit.history as Record<string, number[]>;
        history.push({ epoch: e, loss: h.loss![0]!, acc: h.acc![0]!, valLoss: h.val_loss![0]!, valAcc: h.val_acc![0]! });
      } finally {
        px!.dispose();
        py!.dispose();
      }
    }
  } finally {
    xs.dispose();
    ys.dispose();
  }
  const predicted = tf.tidy(() => (model.predict(vx) as Tensor).argMax(-1));
  const predictions = await predicted.data();
  predicted.dispose();
  vx.dispose();
  vy.dispose();
  let correct = 0;
  for (let i = 0; i < val.rows; i++) if (predictions[i] === val.labels[i]) correct++;
  return { model, history, valAccuracy: correct / val.rows, seconds: (performance.now() - started) / 1000 };
}
