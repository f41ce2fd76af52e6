/**
 * Export to Keras 3: a model trained in Node, written as a .keras file, loaded by Python Keras itself
 * (benchmarks/peers/keras_predict.py, the pip wheel the suite installs), predicts what featherstack
 * predicts. Without python3 and Keras the test fails and says how to install them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type LayersModel, loadTensorFlow, type Tensor } from '@featherstack/tensorflow';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { createBaseModel, loadModelFile, ModelExportError, saveKerasFile } from '../dist/index.js';

const run = promisify(execFile);
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const SCRIPT = fileURLToPath(new URL('../../../benchmarks/peers/keras_predict.py', import.meta.url));

/** Keras's predictions for `x` from `file`, and the layer classes it rebuilt. */
async function kerasPredict(file: string, x: Tensor): Promise<{ y: Float32Array; layers: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'fs-keras-predict-'));
  await writeFile(join(dir, 'x.f32'), new Uint8Array((await x.data()).buffer));
  let stdout: string;
  try {
    ({ stdout } = await run('python3', [SCRIPT, '--model', file, '--input', join(dir, 'x.f32'), '--shape', x.shape.join(','), '--out', join(dir, 'y.f32')], {
      timeout: 180_000,
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
    }));
  } catch (error) {
    const reason = String((error as { stderr?: string }).stderr || (error as Error).message)
      .trim()
      .split('\n')
      .slice(-3)
      .join(' | ');
    throw new Error(`Keras could not load or predict ${file} (python3 with TensorFlow and Keras 3 is needed: pip install tensorflow-cpu): ${reason}`);
  }
  const bytes = await readFile(join(dir, 'y.f32'));
  return { y: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), layers: JSON.parse(stdout.trim().split('\n').at(-1)!).layers };
}

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The seed CNN with BatchNormalization (random statistics, so ignoring them would show) and a Sequential head nested in it. */
function stackedModel(): LayersModel {
  const base = createBaseModel(tf, { inputShape: [32, 32, 3], filters: [8, 16], dense: [24, 12], seed: 4 });
  const features = base.getLayer('features').output as Parameters<LayersModel['apply']>[0];
  const bn = tf.layers.batchNormalization({
    name: 'bn',
    betaInitializer: tf.initializers.randomNormal({ seed: 1 }),
    gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 2 }),
    movingMeanInitializer: tf.initializers.randomNormal({ seed: 3 }),
    movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 2, seed: 4 }),
  });
  const head = tf.sequential({ name: 'head' });
  head.add(tf.layers.dense({ units: 16, activation: 'relu', inputShape: [12], name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
  head.add(tf.layers.dropout({ rate: 0.5, name: 'drop' }));
  head.add(tf.layers.dense({ units: 5, activation: 'softmax', name: 'classes', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
  const out = head.apply(bn.apply(features) as never) as never;
  return tf.model({ inputs: base.inputs, outputs: out, name: 'stacked' });
}

describe('export to Keras 3', () => {
  it('writes a .keras file that Keras loads and predicts with, equal to featherstack within 1e-5, and that featherstack reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-export-'));
    const model = stackedModel();
    const file = join(dir, 'stacked.keras');
    await saveKerasFile(model, file, { 'featherstack.json': '{"classNames":["a","b","c","d","e"]}' });
    expect(Object.keys(unzipSync(new Uint8Array(await readFile(file)))).sort()).toEqual([
      'config.json',
      'featherstack.json',
      'metadata.json',
      'model.weights.h5',
    ]);
    const x = tf.randomUniform([6, 32, 32, 3], 0, 1, 'float32', 7);
    const ours = (await (model.predict(x) as Tensor).data()) as Float32Array;
    const keras = await kerasPredict(file, x);
    // Same float32 kernels in another order: the softmax outputs agree to rounding.
    expect(maxDifference(keras.y, ours)).toBeLessThan(1e-5);
    expect(keras.layers).toContain('BatchNormalization');
    expect(keras.layers).toContain('Sequential');
    // And featherstack's own importer reads the file back to the same predictions.
    const back = await loadModelFile(tf, file);
    expect(maxDifference((await (back.predict(x) as Tensor).data()) as Float32Array, ours)).toBeLessThan(1e-6);
    tf.dispose([x, model, back] as never);
  });

  it('refuses, by layer, class and file, a model Keras could not rebuild, and writes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-export-'));
    const model = tf.sequential({ name: 'recurrent' });
    model.add(tf.layers.gru({ units: 4, inputShape: [3, 2], name: 'gru' }));
    const file = join(dir, 'rnn.keras');
    await expect(saveKerasFile(model, file)).rejects.toThrow(ModelExportError);
    await expect(saveKerasFile(model, file)).rejects.toThrow(
      `layer 'gru' (GRU) in ${file}: cannot be written as a Keras file: recurrent layers are not exported yet`,
    );
    await expect(readFile(file)).rejects.toThrow('ENOENT');
    model.dispose();
  });
});
