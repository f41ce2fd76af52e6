import { readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBaseModel } from '@featherstack/core';
import type { StackedMetadata } from '@featherstack/common';
import { loadTensorFlow, type Tensor } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { loadStacked, saveStacked, stackModels } from '../dist/index.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

describe('stacked model', () => {
  it('names the file when model.json or weights.bin is truncated, missing or foreign, before tfjs reads them', async () => {
    const base = createBaseModel(tf, { inputShape: [12, 12, 1], filters: [4], dense: [16, 8], seed: 3 });
    const head = tf.sequential({ layers: [tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [8] })] });
    const root = await mkdtemp(join(tmpdir(), 'fs-stacked-bad-'));
    const metadata = {
      format: 1,
      classNames: ['a', 'b', 'c'],
      inputShape: [12, 12, 1],
      colorMode: 'grayscale',
      interpolation: 'nearest',
      rescale: 1 / 255,
      featureLayer: 'features',
    } satisfies StackedMetadata;
    const fresh = async (name: string) => {
      const dir = join(root, name);
      await saveStacked(stackModels(tf, base, head), dir, metadata);
      return dir;
    };
    const weights = await fresh('weights');
    const size = statSync(join(weights, 'weights.bin')).size;
    truncateSync(join(weights, 'weights.bin'), 1000);
    await expect(loadStacked(tf, weights)).rejects.toThrow(
      `model file ${join(weights, 'weights.bin')} holds 1000 bytes where ${join(weights, 'model.json')} describes ${size}: truncated`,
    );
    const json = await fresh('json');
    truncateSync(join(json, 'model.json'), 100);
    await expect(loadStacked(tf, json)).rejects.toThrow(new RegExp(`model file ${join(json, 'model.json')} is not valid JSON, truncated or damaged`));
    const missing = await fresh('missing');
    rmSync(join(missing, 'weights.bin'));
    await expect(loadStacked(tf, missing)).rejects.toThrow(`model file ${join(missing, 'weights.bin')} is missing (listed by ${join(missing, 'model.json')})`);
    const foreign = await fresh('foreign');
    writeFileSync(join(foreign, 'weights.bin'), Buffer.alloc(size + 8));
    await expect(loadStacked(tf, foreign)).rejects.toThrow('not the weights of this model');
  });

  it('predicts what base → features → head predicts, and survives a save/load round trip', async () => {
    const base = createBaseModel(tf, { inputShape: [12, 12, 1], filters: [4], dense: [16, 8], seed: 3 });
    const head = tf.sequential({
      layers: [tf.layers.dense({ units: 6, activation: 'relu', inputShape: [8] }), tf.layers.dense({ units: 3, activation: 'softmax' })],
    });
    const x = tf.randomUniform([5, 12, 12, 1], 0, 1, 'float32', 11);
    const twoStep = tf.tidy(() => head.predict(base.predict(x) as Tensor) as Tensor);
    const stacked = stackModels(tf, base, head);
    const oneStep = stacked.predict(x) as Tensor;
    expect(Array.from(await oneStep.data())).toEqual(Array.from(await twoStep.data()));

    const dir = join(await mkdtemp(join(tmpdir(), 'fs-stacked-')), 'model');
    const metadata = {
      format: 1,
      classNames: ['a', 'b', 'c'],
      inputShape: [12, 12, 1],
      colorMode: 'grayscale',
      interpolation: 'nearest',
      rescale: 1 / 255,
      featureLayer: 'features',
    } satisfies StackedMetadata;
    await saveStacked(stacked, dir, { ...metadata, inputShape: [12, 12, 1] });
    const loaded = await loadStacked(tf, dir);
    expect(loaded.metadata.classNames).toEqual(['a', 'b', 'c']);
    // Saved atomically: nothing is left beside the model, and saving again replaces it whole.
    expect(readdirSync(join(dir, '..')).sort()).toEqual(['model']);
    await saveStacked(stacked, dir, { ...metadata, classNames: ['x', 'y', 'z'] });
    expect((await loadStacked(tf, dir)).metadata.classNames).toEqual(['x', 'y', 'z']);
    expect(readdirSync(join(dir, '..')).sort()).toEqual(['model']);
    // Metadata naming fewer classes than the model has outputs would drop a class from predictions.
    const short = join(dir, '..', 'short');
    await saveStacked(stacked, short, { ...metadata, classNames: ['a', 'b'] });
    await expect(loadStacked(tf, short)).rejects.toThrow(
      `model file ${join(short, 'featherstack.json')} names 2 classes but the model in ${join(short, 'model.json')} has 3 outputs`,
    );
    const reloaded = loaded.model.predict(x) as Tensor;
    const a = await reloaded.data();
    const b = await twoStep.data();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 6);
    tf.dispose([x, twoStep, oneStep, reloaded]);
  });

  it('names a missing feature layer and a directory without metadata', async () => {
    const base = createBaseModel(tf, { inputShape: [12, 12, 1], filters: [4], dense: [8] });
    const head = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [8] })] });
    expect(() => stackModels(tf, base, head, 'nope')).toThrow(/options\.featureLayer must be a layer of the base model/);
    const empty = await mkdtemp(join(tmpdir(), 'fs-stacked-'));
    await expect(loadStacked(tf, empty)).rejects.toThrow(/featherstack\.json.*cannot be read as a stacked model's metadata/);
  });
});
