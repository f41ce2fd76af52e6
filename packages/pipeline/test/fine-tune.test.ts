import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { runWorkflow, trainBaseStage } from '../dist/index.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

/** A small pretrained-style base: conv → BatchNormalization (non-trivial statistics) → depthwise → pooled features. */
async function savedBase(dir: string): Promise<string> {
  const input = tf.input({ shape: [28, 28, 1] });
  // No bias before BatchNormalization, as in real backbones (a bias there has a zero gradient, whose
  // rounding noise Adam would turn into full steps that the moving mean then follows).
  let x = tf.layers
    .conv2d({ filters: 4, kernelSize: 3, useBias: false, name: 'stem', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) })
    .apply(input);
  x = tf.layers
    .batchNormalization({
      name: 'stem_bn',
      movingMeanInitializer: tf.initializers.constant({ value: 0.1 }),
      movingVarianceInitializer: tf.initializers.constant({ value: 2 }),
    })
    .apply(x);
  x = tf.layers.reLU({ maxValue: 6, name: 'stem_relu' }).apply(x);
  x = tf.layers.depthwiseConv2d({ kernelSize: 3, name: 'block_dw', depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(x);
  x = tf.layers
    .conv2d({ filters: 8, kernelSize: 1, activation: 'relu', name: 'block_project', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })
    .apply(x);
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const model = tf.model({ inputs: input, outputs: x as never, name: 'pretrained' });
  await model.save(`file://${dir}`);
  model.dispose();
  return join(dir, 'model.json');
}

const weightsOf = async (file: string) => {
  const model = await tf.loadLayersModel(`file://${file}`);
  const out = Object.fromEntries(model.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]));
  model.dispose();
  return out;
};

describe('fine-tuning a pretrained base (train-base --model)', () => {
  it('trains the top N layers on the graph engine, keeps BatchNormalization and the layers below as they were, and records the cut', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-fine-tune-'));
    const file = await savedBase(join(dir, 'pretrained'));
    const before = await weightsOf(file);
    const lines: string[] = [];
    const result = await trainBaseStage({
      train: join(SHIPPED_DATASET, 'train'),
      out: join(dir, 'out'),
      targetSize: [99, 99], // the model's input wins
      epochs: 1,
      model: file,
      fineTune: 2,
      learningRate: 1e-3,
      augment: { rescale: 1 / 255 },
      log: (line) => lines.push(line),
    });
    expect(result.fineTuned).toEqual(['block_dw', 'block_project']);
    expect(lines.join('\n')).toContain('fine-tuned 2 of');
    expect((result.history as { engine: string }[])[0]!.engine).toBe('graph');
    const after = await weightsOf(result.model);
    const moved = (name: string) => after[name]!.some((v, i) => Math.abs(v - before[name]![i]!) > 1e-7);
    expect(moved('block_dw/depthwise_kernel')).toBe(true);
    expect(moved('block_project/kernel')).toBe(true);
    for (const frozen of ['stem/kernel', 'stem_bn/gamma', 'stem_bn/beta', 'stem_bn/moving_mean', 'stem_bn/moving_variance'])
      expect(moved(frozen), frozen).toBe(false);
    // The saved base is the whole pretrained model, cut where extract will read it (its output layer).
    const json = JSON.parse(await readFile(result.model, 'utf8'));
    expect(json.userDefinedMetadata.featherstack).toMatchObject({ featureLayer: 'pool', pooling: 'none' });
    await expect(
      trainBaseStage({
        train: join(SHIPPED_DATASET, 'train'),
        out: join(dir, 'bad'),
        targetSize: [28, 28],
        epochs: 1,
        model: file,
        fineTune: 9,
        log: () => {},
      }),
    ).rejects.toThrow("options.fineTune must be 'all' or a number of layers from 1 to the base's 3 layers with weights, received 9");
  });

  it('run --base --fine-tune: phase 1 trains the head on frozen features, phase 2 trains the top layers with it, then extracts again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-run-fine-tune-'));
    const file = await savedBase(join(dir, 'pretrained'));
    const before = await weightsOf(file);
    const lines: string[] = [];
    const out = join(dir, 'run');
    const result = await runWorkflow({
      out,
      base: file,
      fineTune: 2,
      fineTuneEpochs: 2,
      fineTuneLr: 1e-3,
      headEpochs: 2,
      augment: { rescale: 1 / 255, horizontalFlip: true },
      log: (line) => lines.push(line),
    });
    expect(result.fineTune!.layers).toEqual(['block_dw', 'block_project']);
    expect(result.fineTune!.history.map((e) => e.engine)).toEqual(['graph', 'graph']);
    expect(result.head).toHaveLength(2);
    const log = lines.join('\n');
    expect(log).toMatch(
      /fine-tune: 2 of .*model\.json's layers with weights train \(BatchNormalization frozen\), with the head, for 2 epochs at learning rate 0\.001/,
    );
    expect(log).toMatch(/fine-tune epoch 2: loss [\d.]+ acc [\d.]+ val_loss [\d.]+ val_acc [\d.]+/);
    // Phase 1's features are kept apart; the final ones come from the fine-tuned base and differ.
    await access(join(out, 'features', 'frozen', 'train.arrow'));
    expect(result.features.train).toBe(join(out, 'features', 'train.arrow'));
    const frozenFeatures = await readFile(join(out, 'features', 'frozen', 'val.arrow'));
    expect(Buffer.compare(frozenFeatures, await readFile(join(out, 'features', 'val.arrow')))).not.toBe(0);
    // The published stacked model carries the fine-tuned layers, the frozen ones as they were.
    const stacked = await tf.loadLayersModel(`file://${join(out, 'model', 'model.json')}`);
    const after = Object.fromEntries(stacked.weights.map((w) => [w.originalName, Array.from(w.read().dataSync())]));
    stacked.dispose();
    const moved = (name: string) => after[name]!.some((v, i) => Math.abs(v - before[name]![i]!) > 1e-7);
    expect(moved('block_dw/depthwise_kernel')).toBe(true);
    for (const frozen of ['stem/kernel', 'stem_bn/moving_mean', 'stem_bn/moving_variance']) expect(moved(frozen), frozen).toBe(false);
    // The run's accuracy is the final model's, on the features extracted after fine-tuning.
    expect(result.val_accuracy).toBe(result.evaluation.accuracy);
    expect(result.seconds.fine_tune).toBeGreaterThan(0);
    expect(result.seconds.total).toBeGreaterThan(result.seconds.fine_tune! + result.seconds.re_extract!);
    // The report's seconds start after the last stage (not at the head, before fine-tuning).
    expect(result.seconds.report).toBeLessThan(result.seconds.fine_tune! + result.seconds.re_extract!);
    await expect(runWorkflow({ out: join(dir, 'no-base'), fineTune: 'all' })).rejects.toThrow(
      'fineTune: fine-tunes an imported base, and there is none: give base (--base FILE)',
    );
  });
});

describe('fine-tuning with BatchNormalization training (--bn-train)', () => {
  it('trains BatchNormalization on batch statistics synchronised across replicas: 2 replicas give 1 replica’s losses', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-bn-train-'));
    const file = await savedBase(join(dir, 'pretrained'));
    const before = await weightsOf(file);
    const fineTune = async (replicas: number) => {
      const lines: string[] = [];
      const result = await trainBaseStage({
        train: join(SHIPPED_DATASET, 'train'),
        out: join(dir, `r${replicas}`),
        targetSize: [28, 28],
        epochs: 2,
        model: file,
        fineTune: 'all',
        bnTrain: true,
        replicas,
        learningRate: 1e-3,
        augment: { rescale: 1 / 255 },
        log: (line) => lines.push(line),
      });
      return { result, lines, weights: await weightsOf(result.model) };
    };
    const one = await fineTune(1);
    const two = await fineTune(2);
    expect(one.result.fineTuned).toEqual(['stem', 'stem_bn', 'block_dw', 'block_project']);
    expect(one.lines.join('\n')).toContain('BatchNormalization training on batch statistics');
    const history = (r: typeof one) => r.result.history as { loss: number; engine: string; replicas: number }[];
    expect(history(two).map((h) => [h.engine, h.replicas])).toEqual([
      ['graph', 2],
      ['graph', 2],
    ]);
    for (let e = 0; e < 2; e++) expect(Math.abs(history(two)[e]!.loss - history(one)[e]!.loss)).toBeLessThan(1e-3 * history(one)[e]!.loss);
    // The statistics trained: the moving averages left their pretrained values, the same on both.
    for (const name of ['stem_bn/gamma', 'stem_bn/moving_mean', 'stem_bn/moving_variance']) {
      expect(
        one.weights[name]!.some((v, i) => Math.abs(v - before[name]![i]!) > 1e-3),
        name,
      ).toBe(true);
      for (const [i, v] of one.weights[name]!.entries()) expect(Math.abs(two.weights[name]![i]! - v), name).toBeLessThan(1e-4 + 1e-3 * Math.abs(v));
    }
    await expect(runWorkflow({ out: join(dir, 'no-fine-tune'), base: file, bnTrain: true })).rejects.toThrow(
      'bnTrain: trains BatchNormalization in the fine-tuning phase, and there is none: give fineTune (--fine-tune all|N)',
    );
  });
});

describe('retraining the head on the fine-tuned features (--retrain-head)', () => {
  it('trains a fresh head on the features extracted after fine-tuning and publishes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-retrain-head-'));
    const file = await savedBase(join(dir, 'pretrained'));
    const out = join(dir, 'run');
    const lines: string[] = [];
    const result = await runWorkflow({
      out,
      base: file,
      fineTune: 2,
      fineTuneEpochs: 1,
      fineTuneLr: 1e-3,
      headEpochs: 3,
      retrainHead: true,
      augment: { rescale: 1 / 255 },
      log: (line) => lines.push(line),
    });
    expect(lines.join('\n')).toContain("retrain-head: a fresh head on the fine-tuned base's features, 3 epochs");
    // Phase 1's head and the fresh one each trained their 3 epochs, on different features.
    expect(result.fineTune!.frozenHead).toHaveLength(3);
    expect(result.head).toHaveLength(3);
    expect(result.head.map((e) => e.loss)).not.toEqual(result.fineTune!.frozenHead!.map((e) => e.loss));
    expect(result.seconds.retrain_head).toBeGreaterThan(0);
    expect(result.seconds.total).toBeGreaterThan(result.seconds.fine_tune! + result.seconds.re_extract! + result.seconds.retrain_head!);
    await access(join(out, 'retrain-head-log.csv'));
    // The published model is the retrained head on the fine-tuned base: the evaluation (of the
    // published head, on the features the fine-tuned base extracts) is the fresh head's last epoch.
    expect(result.val_accuracy).toBe(result.evaluation.accuracy);
    expect(result.evaluation.accuracy).toBeCloseTo(result.head.at(-1)!.valAcc, 6);
    const history = JSON.parse(await readFile(join(out, 'history.json'), 'utf8'));
    expect(history.head.map((e: { loss: number }) => e.loss)).toEqual(result.head.map((e) => e.loss));
    await expect(runWorkflow({ out: join(dir, 'no-fine-tune'), base: file, retrainHead: true })).rejects.toThrow(
      'retrainHead: trains a head on the fine-tuned base’s features, and there is none: give fineTune (--fine-tune all|N)',
    );
  });
});
