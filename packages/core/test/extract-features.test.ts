import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { flowFromDirectory, jpegDecoder } from '@featherstack/images';
import { loadTensorFlow, planExtraction } from '@featherstack/tensorflow';
import { tableFromIPC } from 'apache-arrow';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createBaseModel,
  extractFeatures,
  extractionBatchFor,
  extractionWorkers,
  featureExtractor,
  multiplyAccumulates,
  fitPca,
  loadBaseModel,
  modelHash,
  openExtraction,
  trainBase,
  withClassifier,
} from '../dist/index.js';
import { SHIPPED_VAL } from '@featherstack/fixtures';

const data = SHIPPED_VAL;
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

describe('base training and feature extraction', () => {
  it('trains the base through its temporary classifier and streams features into an Arrow file', async () => {
    const flow = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 50,
      seed: 1,
      workers: 2,
      augment: { rescale: 1 / 255 },
    });
    const plain = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 64,
      shuffle: false,
      workers: 1,
      augment: { rescale: 1 / 255 },
    });
    try {
      const base = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 3 });
      const trainer = withClassifier(tf, base, 10);
      const tensorsBefore = tf.memory().numTensors;
      const history = await trainBase(tf, trainer, flow, { epochs: 3 });
      expect(history).toHaveLength(3);
      expect(history[2]!.loss).toBeLessThan(history[0]!.loss);
      // No tensor leaks from the batch loop: only the optimizer's slots were added.
      const afterTraining = tf.memory().numTensors;
      await trainBase(tf, trainer, flow, { epochs: 1 });
      expect(tf.memory().numTensors - afterTraining).toBeLessThanOrEqual(afterTraining - tensorsBefore);

      const out = join(await mkdtemp(join(tmpdir(), 'fs-core-')), 'val.arrow');
      const result = await extractFeatures(tf, featureExtractor(tf, base), plain, out, { metadata: { 'featherstack.base_model': 'test' } });
      // Extraction's own layout: a one-thread replica per core (planExtraction), not training's.
      expect(result).toMatchObject({ rows: 500, dimension: 64, engine: 'graph', replicas: planExtraction({}).replicas });
      expect(readdirSync(dirname(out)).filter((f) => f.endsWith('.partial'))).toEqual([]);
      const table = tableFromIPC(readFileSync(out));
      expect(table.numRows).toBe(500);
      expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual(['path:Utf8', 'label:Int32', 'features:FixedSizeList[64]<Float32>']);
      expect(JSON.parse(table.schema.metadata.get('featherstack.class_names')!)).toHaveLength(10);
      expect(table.schema.metadata.get('featherstack.base_model')).toBe('test');
      expect(table.schema.metadata.get('featherstack.base_model_sha256')).toBe(modelHash(featureExtractor(tf, base)));
      expect(table.schema.metadata.get('featherstack.version')).toMatch(/^\d+\.\d+\.\d+/);
      expect(table.schema.metadata.get('featherstack.format')).toBe('1');
      expect(JSON.parse(table.schema.metadata.get('featherstack.image')!)).toMatchObject({ height: 28, width: 28, channels: 1 });
      expect(table.getChild('path')!.get(0)).toBe(plain.filenames[0]);
      expect(table.getChild('label')!.get(499)).toBe(9);
      // The file is ordinary Arrow: pyarrow reads the same rows, schema and metadata (npm test installs
      // it; without it this fails, saying so).
      {
        const script = [
          'import json, sys, pyarrow as pa',
          't = pa.ipc.open_file(sys.argv[1]).read_all()',
          'm = {k.decode(): v.decode() for k, v in t.schema.metadata.items()}',
          "print(json.dumps(dict(rows=t.num_rows, types=[str(f.type) for f in t.schema], classes=json.loads(m['featherstack.class_names']), label=t.column('label')[499].as_py(), first=t.column('features')[0].as_py()[:3])))",
        ].join('\n');
        let text: string;
        try {
          text = execFileSync('python3', ['-c', script, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        } catch (error) {
          throw new Error(
            `the pyarrow interop check needs python3 with pyarrow (npm test installs it: pip install pyarrow): ${(error as { stderr?: string }).stderr ?? error}`,
          );
        }
        const py = JSON.parse(text);
        expect(py).toMatchObject({ rows: 500, types: ['string', 'int32', 'fixed_size_list<value: float not null>[64]'], label: 9 });
        expect(py.classes).toHaveLength(10);
        const js = Array.from((table.getChild('features')!.get(0)!.toArray() as Float32Array).subarray(0, 3));
        for (const [i, v] of (py.first as number[]).entries()) expect(v).toBeCloseTo(js[i]!, 6);
      }
      // Row 0's features equal the extractor's output for image 0.
      const first = (await plain.epoch(0).next()).value!;
      const direct = tf.tidy(() =>
        (featureExtractor(tf, base).predict(tf.tensor4d(first.images, first.shape)) as import('@featherstack/tensorflow').Tensor).dataSync(),
      );
      const stored = table.getChild('features')!.get(0)!.toArray() as Float32Array;
      for (let i = 0; i < 64; i++) expect(stored[i]).toBeCloseTo(direct[i]!, 5);
      trainer.dispose();
    } finally {
      await Promise.all([flow.close(), plain.close()]);
    }
  });

  it('projects onto PCA fitted on the training features and L2-normalises rows before writing', async () => {
    const flow = await flowFromDirectory(data, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 100,
      shuffle: false,
      workers: 2,
      augment: { rescale: 1 / 255 },
    });
    try {
      const base = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 4 });
      const extractor = featureExtractor(tf, base);
      const pca = await fitPca(tf, extractor, flow, { components: 8 });
      expect(pca.explainedVariance).toHaveLength(8);
      for (let i = 1; i < 8; i++) expect(pca.explainedVariance[i]).toBeLessThanOrEqual(pca.explainedVariance[i - 1]!);
      const dir = await mkdtemp(join(tmpdir(), 'fs-pca-'));
      const projected = await extractFeatures(tf, extractor, flow, join(dir, 'pca.arrow'), { transform: { pca } });
      expect(projected.dimension).toBe(8);
      const table = tableFromIPC(readFileSync(join(dir, 'pca.arrow')));
      const rows = Array.from({ length: table.numRows }, (_, r) => Array.from(table.getChild('features')!.get(r)!.toArray() as Float32Array));
      // Principal components are uncorrelated and centred on the training set.
      const mean = (c: number) => rows.reduce((s, r) => s + r[c]!, 0) / rows.length;
      expect(Math.abs(mean(0))).toBeLessThan(1e-3 * Math.sqrt(pca.explainedVariance[0]! + 1));
      const cov = (a: number, b: number) => rows.reduce((s, r) => s + (r[a]! - mean(a)) * (r[b]! - mean(b)), 0) / rows.length;
      expect(Math.abs(cov(0, 1))).toBeLessThan(1e-3 * Math.sqrt(cov(0, 0) * cov(1, 1)) + 1e-9);
      expect(cov(0, 0)).toBeGreaterThanOrEqual(cov(1, 1));
      await extractFeatures(tf, extractor, flow, join(dir, 'l2.arrow'), { transform: { pca, l2: true, sequence: [4, 2] } });
      const l2 = tableFromIPC(readFileSync(join(dir, 'l2.arrow')));
      for (let r = 0; r < l2.numRows; r += 97) {
        const v = l2.getChild('features')!.get(r)!.toArray() as Float32Array;
        expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      }
      expect(JSON.parse(l2.schema.metadata.get('featherstack.transform')!)).toEqual({ l2: true, pca: { components: 8, from: 64 } });
      expect(JSON.parse(l2.schema.metadata.get('featherstack.sequence')!)).toEqual([4, 2]);
      await expect(extractFeatures(tf, extractor, flow, join(dir, 'bad.arrow'), { transform: { pca, sequence: [3, 2] } })).rejects.toThrow(
        'options.transform.sequence must be [timesteps, size] whose product is the feature dimension 8, received [3, 2]',
      );
      await expect(fitPca(tf, extractor, flow, { components: 65 })).rejects.toThrow('options.components must be an integer in [1, 64], received 65');
      base.dispose();
    } finally {
      await flow.close();
    }
  });

  it('loads a saved (e.g. pretrained) base from disk and extracts the same features', async () => {
    const base = createBaseModel(tf, { inputShape: [12, 12, 1], filters: [4], dense: [16, 8], seed: 9 });
    const dir = await mkdtemp(join(tmpdir(), 'fs-base-'));
    await base.save(`file://${dir}`);
    const loaded = await loadBaseModel(tf, join(dir, 'model.json'));
    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 2);
    const a = tf.tidy(() => Array.from((featureExtractor(tf, base).predict(x) as import('@featherstack/tensorflow').Tensor).dataSync()));
    const b = tf.tidy(() => Array.from((featureExtractor(tf, loaded).predict(x) as import('@featherstack/tensorflow').Tensor).dataSync()));
    expect(b).toEqual(a);
    await expect(loadBaseModel(tf, join(dir, 'model.json'), 'pool5')).rejects.toThrow(
      /options\.featureLayer must be a layer of .*model\.json \(layers: .*features/,
    );
    await expect(loadBaseModel(tf, join(dir, 'missing.json'))).rejects.toThrow(`model file ${join(dir, 'missing.json')} cannot be read (ENOENT)`);
    tf.dispose(x);
    base.dispose();
    loaded.dispose();
  });

  it('resumes an interrupted extraction from its last complete batch and yields the rows of an uninterrupted one', async () => {
    const options = {
      targetSize: [28, 28] as [number, number],
      colorMode: 'grayscale' as const,
      batchSize: 64,
      shuffle: false,
      workers: 2,
      augment: { rescale: 1 / 255 },
    };
    const flow = await flowFromDirectory(data, options);
    const base = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 6 });
    const extractor = featureExtractor(tf, base);
    const dir = await mkdtemp(join(tmpdir(), 'fs-resume-'));
    try {
      await extractFeatures(tf, extractor, flow, join(dir, 'whole.arrow'));
      // "Killed": the abort lands while the fourth batch is processed, so four batches are journalled.
      const controller = new AbortController();
      const epoch = flow.epoch.bind(flow);
      flow.epoch = (e, o) => {
        const inner = epoch(e, o);
        let n = 0;
        return (async function* () {
          for await (const b of inner) {
            if (n++ === 3) controller.abort(new Error('killed'));
            yield b;
          }
        })() as ReturnType<typeof epoch>;
      };
      const out = join(dir, 'resumed.arrow');
      await expect(extractFeatures(tf, extractor, flow, out, { signal: controller.signal })).rejects.toThrow('killed');
      flow.epoch = epoch;
      expect(existsSync(out)).toBe(false);
      // Cut the journal inside its last batch too, as a kill during a write would: three remain whole.
      const journal = `${out}.journal.arrows`;
      truncateSync(journal, statSync(journal).size - 100);
      const progress: { batch: number; batches: number; rows: number; total: number; extractedRows: number }[] = [];
      const resumed = await extractFeatures(tf, extractor, flow, out, { resume: true, onBatch: (p) => progress.push(p) });
      expect(resumed.resumedBatches).toBe(3);
      // Progress counts the resumed batches as done and the rows extracted now separately.
      expect(progress.map((p) => p.batch)).toEqual([4, 5, 6, 7, 8]);
      expect(progress.at(-1)).toMatchObject({ batches: 8, rows: 500, total: 500, extractedRows: 500 - 3 * 64 });
      expect(existsSync(journal)).toBe(false);
      const a = tableFromIPC(readFileSync(join(dir, 'whole.arrow')));
      const b = tableFromIPC(readFileSync(out));
      expect(b.numRows).toBe(a.numRows);
      expect(b.getChild('path')!.toArray()).toEqual(a.getChild('path')!.toArray());
      expect(Array.from(b.getChild('features')!.data.flatMap((d) => Array.from(d.children[0]!.values as Float32Array)))).toEqual(
        Array.from(a.getChild('features')!.data.flatMap((d) => Array.from(d.children[0]!.values as Float32Array))),
      );
    } finally {
      base.dispose();
      await flow.close();
    }
  });

  it('never resumes a journal written by another base model: it extracts anew and says why', async () => {
    const options = {
      targetSize: [28, 28] as [number, number],
      colorMode: 'grayscale' as const,
      batchSize: 100,
      shuffle: false,
      workers: 2,
      augment: { rescale: 1 / 255 },
    };
    const flow = await flowFromDirectory(data, options);
    const first = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 11 });
    const second = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 12 });
    const dir = await mkdtemp(join(tmpdir(), 'fs-journal-'));
    try {
      // An extraction with the first model stops after two batches, leaving its journal.
      const controller = new AbortController();
      const out = join(dir, 'features.arrow');
      await expect(
        extractFeatures(tf, featureExtractor(tf, first), flow, out, {
          signal: controller.signal,
          onBatch: (p) => p.batch === 2 && controller.abort(new Error('killed')),
        }),
      ).rejects.toThrow('killed');
      expect(existsSync(`${out}.journal.arrows`)).toBe(true);
      // Resumed with the second model: the journal is not taken over.
      const resumed = await extractFeatures(tf, featureExtractor(tf, second), flow, out, { resume: true });
      expect(resumed.resumedBatches).toBe(0);
      expect(resumed.discardedJournal).toMatch(/features\.arrow\.journal\.arrows was written by base model [0-9a-f]{12}…, not this one \([0-9a-f]{12}…\)/);
      const fresh = await extractFeatures(tf, featureExtractor(tf, second), flow, join(dir, 'fresh.arrow'));
      const values = (file: string) =>
        Array.from(
          tableFromIPC(readFileSync(file))
            .getChild('features')!
            .data.flatMap((d) => Array.from(d.children[0]!.values as Float32Array)),
        );
      expect(values(out)).toEqual(values(fresh.path));
      expect(fresh.discardedJournal).toBeUndefined();
      // The same model and classes over other images (one file fewer per class): not taken over either.
      const other = join(dir, 'other');
      cpSync(data, other, { recursive: true });
      for (const c of readdirSync(other)) rmSync(join(other, c, readdirSync(join(other, c)).sort()[0]!));
      const otherFlow = await flowFromDirectory(other, options);
      try {
        const controller = new AbortController();
        await expect(
          extractFeatures(tf, featureExtractor(tf, first), flow, out, {
            signal: controller.signal,
            onBatch: (p) => p.batch === 2 && controller.abort(new Error('killed')),
          }),
        ).rejects.toThrow('killed');
        const elsewhere = await extractFeatures(tf, featureExtractor(tf, first), otherFlow, out, { resume: true });
        expect(elsewhere.resumedBatches).toBe(0);
        expect(elsewhere.discardedJournal).toMatch(/journal\.arrows was written for other images/);
        expect(elsewhere.rows).toBe(otherFlow.samples);
      } finally {
        await otherFlow.close();
      }
    } finally {
      first.dispose();
      second.dispose();
      await flow.close();
    }
  });

  it('extracts several flows with one opened base, as one extraction each, and frees its session on failure and close', async () => {
    const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [4], dense: [16, 8], seed: 5 });
    const extractor = featureExtractor(tf, base);
    const flow = (batchSize: number) =>
      flowFromDirectory(data, { targetSize: [28, 28], colorMode: 'grayscale', batchSize, shuffle: false, workers: 1, augment: { rescale: 1 / 255 } });
    const [a, b] = [await flow(64), await flow(40)];
    const dir = await mkdtemp(join(tmpdir(), 'fs-open-'));
    const features = (file: string) =>
      tableFromIPC(readFileSync(file))
        .getChild('features')!
        .data.flatMap((d) => Array.from((d.children[0]!.values as Float32Array).subarray(d.offset * 8, (d.offset + d.length) * 8)));
    try {
      const extraction = openExtraction(tf, extractor, { engine: 'graph' });
      const first = await extraction.extract(a, join(dir, 'a.arrow'));
      const second = await extraction.extract(b, join(dir, 'b.arrow'));
      await extraction.close();
      expect([first.engine, second.engine, first.rows, second.rows]).toEqual(['graph', 'graph', 500, 500]);
      await expect(extraction.extract(a, join(dir, 'c.arrow'))).rejects.toThrow(`cannot extract ${join(dir, 'c.arrow')}: this extraction was closed`);
      // One session for both flows extracts what a fresh session per flow does.
      await extractFeatures(tf, extractor, a, join(dir, 'a1.arrow'), { engine: 'graph' });
      await extractFeatures(tf, extractor, b, join(dir, 'b1.arrow'), { engine: 'graph' });
      expect(features(join(dir, 'a.arrow'))).toEqual(features(join(dir, 'a1.arrow')));
      expect(features(join(dir, 'b.arrow'))).toEqual(features(join(dir, 'b1.arrow')));
      // Batches of 40 and of 64 rows: oneDNN may pick another kernel per batch size (last-bit differences).
      const [fortyRows, sixtyFourRows] = [features(join(dir, 'b.arrow')), features(join(dir, 'a.arrow'))];
      expect(fortyRows.length).toBe(sixtyFourRows.length);
      expect(Math.max(...fortyRows.map((v, i) => Math.abs(v - sixtyFourRows[i]!)))).toBeLessThan(1e-6);
      // The flow starts decoding before the engine opens: an engine that fails to open hands the
      // flow's epoch back, and the flow extracts again.
      const failing = openExtraction(tf, extractor, { precision: 'bfloat8' as never });
      await expect(failing.extract(a, join(dir, 'd.arrow'))).rejects.toThrow("options.precision must be 'float32' or 'mixed-bfloat16'");
      await failing.close();
      expect((await extractFeatures(tf, extractor, a, join(dir, 'd.arrow'))).rows).toBe(500);
    } finally {
      await Promise.all([a.close(), b.close()]);
      base.dispose();
    }
  });

  it('sizes the extraction batch from the largest layer, the budget shared by the replicas with 8 rows each at least', () => {
    // 16×16×1 in, 16×16×8 out: 2,304 floats (9,216 bytes) an image at the widest layer.
    const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [16, 16, 1], filters: 8, kernelSize: 3, padding: 'same' })] });
    const perImage = 9216;
    expect(extractionBatchFor(model, { budget: perImage * 20 })).toBe(16);
    expect(extractionBatchFor(model, { budget: perImage * 20, replicas: 3 })).toBe(24);
    expect(extractionBatchFor(model, { budget: perImage * 64, replicas: 2 })).toBe(64);
    expect(extractionBatchFor(model, { budget: perImage * 20, replicas: 16 })).toBe(128);
    expect(extractionBatchFor(model, { budget: perImage * 5 })).toBe(5);
    // A model wider than the budget still gives every replica a row; 256 at most.
    expect(extractionBatchFor(model, { budget: perImage / 2, replicas: 4 })).toBe(4);
    expect(extractionBatchFor(model, { budget: perImage * 1000, replicas: 2 })).toBe(256);
    expect(extractionBatchFor(model)).toBe(256);
    expect(() => extractionBatchFor(model, { replicas: 0 })).toThrow('options.replicas must be a positive integer, received 0');
    model.dispose();
  });

  it('counts multiply-accumulates per image and splits the cores between decoding and TensorFlow by them', () => {
    const input = tf.input({ shape: [32, 32, 3] });
    const conv = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }).apply(input) as ReturnType<typeof tf.input>;
    const depthwise = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' }).apply(conv) as ReturnType<typeof tf.input>;
    const dense = tf.layers.dense({ units: 4 }).apply(tf.layers.flatten().apply(depthwise)) as ReturnType<typeof tf.input>;
    const inner = tf.model({ inputs: input, outputs: dense });
    // Nested, as keras.applications bases sit inside a Functional model.
    const outer = tf.model({ inputs: inner.inputs, outputs: inner.outputs });
    const macs = 32 * 32 * 9 * 3 * 8 + 32 * 32 * 9 * 8 + 32 * 32 * 8 * 4;
    expect(multiplyAccumulates(inner)).toBe(macs);
    expect(multiplyAccumulates(tf.sequential({ layers: [inner] }))).toBe(macs);
    // A tiny model costs almost nothing to compute: decoding takes nearly every core.
    expect(extractionWorkers(inner, 16)).toBeGreaterThanOrEqual(15);
    expect(extractionWorkers(inner, 1)).toBe(1);
    // MobileNetV2's cost at 224² (0.3 GMAC): TensorFlow 7.5 ms an image against a decode of 1.0 ms
    // (libjpeg-turbo) → 2 of 16 cores decode; of 3.6 ms (libvips) → 5.
    const heavy = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [224, 224, 3], filters: 221, kernelSize: 3, padding: 'same' })] });
    expect(multiplyAccumulates(heavy)).toBe(224 * 224 * 27 * 221);
    expect([2, 16, 64].map((cores) => extractionWorkers(heavy, cores, 'libjpeg-turbo'))).toEqual([1, 2, 8]);
    expect([2, 16, 64].map((cores) => extractionWorkers(heavy, cores, 'libvips'))).toEqual([1, 5, 21]);
    expect(extractionWorkers(heavy, 16)).toBe(extractionWorkers(heavy, 16, jpegDecoder().decoder));
    outer.dispose();
    heavy.dispose();
  });

  it('names the missing layer when asked for an unknown feature layer', () => {
    const base = createBaseModel(tf, { inputShape: [8, 8, 1] });
    expect(() => featureExtractor(tf, base, 'nope')).toThrow(
      /options.featureLayer must be a layer of model 'base' \(layers: .*conv1, pool1, conv2, pool2, flatten, dense1, features\), received "nope"/,
    );
    base.dispose();
  });

  it('validates model options', () => {
    expect(() => createBaseModel(tf, { inputShape: [8, 8] as never })).toThrow(
      'options.inputShape must be [height, width, channels] of positive integers, received [8, 8]',
    );
    expect(() => createBaseModel(tf, { inputShape: [8, 8, 1], dense: [] })).toThrow(
      'options.dense must be a non-empty array of positive integers, received []',
    );
  });
});
