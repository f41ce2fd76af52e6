/**
 * loadModelFile against Keras itself: keras.applications backbones (and a nested model, a layer
 * zoo, a Sequential model) saved by Keras 3 as .keras and legacy .h5 must predict what Keras
 * predicted; what cannot be imported is refused by name; damaged files are refused naming the file.
 */
// Before TensorFlow loads: oneDNN's kernels raise SIGFPE on this project's CPUs (seen here after a
// few backbones' predicts), and the goldens were computed with TensorFlow's reference kernels.
process.env.TF_ENABLE_ONEDNN_OPTS = '0';

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LayersModel, loadTensorFlow, type Tensor } from '@featherstack/tensorflow';
import { unzipSync, zipSync } from 'fflate';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFile, registerKerasExtensions } from '../dist/import/index.js';
import { type BackboneGoldens, backboneGoldens, GOLDEN_TIMEOUT_MS, type GoldenModel, difference, readF32 } from './goldens.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const BACKBONES = ['MobileNetV2', 'MobileNetV3Small', 'ResNet50', 'EfficientNetB0', 'InceptionV3', 'DenseNet121'];
/**
 * Measured (eager tfjs-node against Keras's predict, both float32, oneDNN off): softmax outputs
 * within 5e-8 and pooled features within 6e-7 of a scale of about 2 (ResNet50). The bounds leave
 * 20x room for other CPUs' kernels; an import that ignored BatchNormalization's moving statistics
 * is off by more than 1e-2 (tested below).
 */
const OUTPUT_ATOL = 1e-6;
const FEATURES_RTOL = 1e-5;

let goldens: BackboneGoldens;
let input: Tensor;
let work: string;
const report: string[] = [];

beforeAll(async () => {
  goldens = await backboneGoldens();
  const { dir, manifest } = goldens;
  input = tf.tensor(readF32(join(dir, manifest.input.file), manifest.input.shape), manifest.input.shape);
  work = await mkdtemp(join(tmpdir(), 'fs-keras-import-'));
}, GOLDEN_TIMEOUT_MS + 60_000);

afterAll(() => {
  input?.dispose();
  if (report.length > 0) console.log(`Keras import (eager tfjs predict vs Keras, ${goldens.manifest.keras}):\n${report.join('\n')}`);
});

const golden = (name: string): GoldenModel => {
  const model = goldens.manifest.models.find((m) => m.name === name);
  if (model === undefined) throw new Error(`the goldens have no model ${name}`);
  return model;
};

function predict(model: LayersModel, layer?: string): Float32Array {
  const target = layer === undefined ? model : tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output });
  const y = target.predict(input) as Tensor;
  const values = y.dataSync() as Float32Array;
  y.dispose();
  return values;
}

/** Loads, checks against Keras's outputs and features, and reports the load time and the errors. */
async function expectKerasPredictions(file: string, g: GoldenModel, label: string): Promise<LayersModel> {
  const started = performance.now();
  const model = await loadModelFile(tf, file);
  const ms = performance.now() - started;
  const out = difference(predict(model), readF32(join(goldens.dir, g.files.output), g.outputShape));
  let line = `  ${label.padEnd(26)} load ${ms.toFixed(0).padStart(5)} ms  output max|Δ| ${out.maxAbs.toExponential(1)}`;
  expect(out.maxAbs, `${label} output`).toBeLessThanOrEqual(OUTPUT_ATOL);
  if (g.featuresLayer !== undefined && g.files.features !== undefined) {
    const features = difference(predict(model, g.featuresLayer), readF32(join(goldens.dir, g.files.features), g.featuresShape!));
    line += `  features(${g.featuresLayer}) max|Δ| ${features.maxAbs.toExponential(1)} of ${features.scale.toFixed(2)} (rel ${features.relative.toExponential(1)})`;
    expect(features.relative, `${label} features`).toBeLessThanOrEqual(FEATURES_RTOL);
  }
  report.push(line);
  return model;
}

describe('Keras backbones load and predict as Keras does', () => {
  for (const name of [...BACKBONES, 'nested', 'zoo', 'sequential']) {
    for (const kind of ['keras', 'h5'] as const) {
      it(`${name} from .${kind}`, async () => {
        const g = golden(name);
        const model = await expectKerasPredictions(join(goldens.dir, g.files[kind]!), g, `${name}.${kind}`);
        model.dispose();
      }, 180_000);
    }
  }

  it('depends on BatchNormalization moving statistics (the goldens would catch an import that ignored them)', async () => {
    const g = golden('MobileNetV2');
    const model = await loadModelFile(tf, join(goldens.dir, g.files.keras));
    for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      const [gamma, beta, mean, variance] = layer.getWeights();
      layer.setWeights([gamma!, beta!, tf.zerosLike(mean!), tf.onesLike(variance!)]);
    }
    const off = difference(predict(model, g.featuresLayer), readF32(join(goldens.dir, g.files.features!), g.featuresShape!));
    expect(off.relative).toBeGreaterThan(1e-2);
    model.dispose();
  }, 180_000);
});

/** Rewrites a .keras archive: `edit` gets its entries and may change them. */
async function rewriteKeras(source: string, target: string, edit: (entries: Record<string, Uint8Array>) => Promise<void> | void): Promise<string> {
  const entries = unzipSync(await readFile(source));
  await edit(entries);
  await writeFile(target, zipSync(entries, { level: 0 }));
  return target;
}

describe('Keras weight layouts', () => {
  it('finds a .keras file’s weights by Keras’s own naming when the vars groups carry no layer names (older Keras 3)', async () => {
    await h5wasm.ready;
    for (const name of ['nested', 'MobileNetV3Small', 'sequential']) {
      const g = golden(name);
      const file = await rewriteKeras(join(goldens.dir, g.files.keras), join(work, `${name}-unnamed.keras`), async (entries) => {
        const h5 = join(work, `${name}-weights.h5`);
        await writeFile(h5, entries['model.weights.h5']!);
        const f = new h5wasm.File(h5, 'a');
        const strip = (path: string) => {
          for (const key of (f.get(path) as InstanceType<typeof h5wasm.Group>).keys()) {
            const child = f.get(`${path}/${key}`);
            if (!(child instanceof h5wasm.Group)) continue;
            if (key === 'vars' && 'name' in child.attrs) child.delete_attribute('name');
            strip(`${path}/${key}`);
          }
        };
        strip('/');
        f.close();
        entries['model.weights.h5'] = new Uint8Array(await readFile(h5));
      });
      (await expectKerasPredictions(file, g, `${name}.keras (no names)`)).dispose();
    }
  }, 300_000);

  it('loads a tf.keras 2.x legacy .h5 (Keras 2 config, :0 weight names, Keras 2 hard_sigmoid)', async () => {
    const image = tf.input({ shape: [12, 12, 3], name: 'image' });
    let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }).apply(image);
    x = tf.layers.batchNormalization({ name: 'bn' }).apply(x);
    x = tf.layers.activation({ activation: 'hardSigmoid', name: 'hard' }).apply(x);
    x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x);
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'predictions' }).apply(x) as ReturnType<typeof tf.input>;
    const source = tf.model({ inputs: image, outputs: out });
    const bn = source.getLayer('bn');
    bn.setWeights(bn.getWeights().map((w, i) => tf.add(w, tf.randomUniform(w.shape, 0.1 * (i === 3 ? 1 : -1), 0.5, 'float32', i))));
    await h5wasm.ready;
    const file = join(work, 'keras2.h5');
    const f = new h5wasm.File(file, 'w');
    f.create_attribute('keras_version', '2.15.0');
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('model_config', source.toJSON() as string);
    const weights = f.create_group('model_weights');
    weights.create_attribute(
      'layer_names',
      source.layers.map((l) => l.name),
    );
    for (const layer of source.layers) {
      const group = weights.create_group(layer.name);
      if (layer.weights.length === 0) continue;
      group.create_attribute(
        'weight_names',
        layer.weights.map((w) => `${w.originalName}:0`),
      );
      const scope = group.create_group(layer.name);
      for (const w of layer.weights) {
        const name = `${w.originalName.split('/').at(-1)}:0`;
        scope.create_dataset({ name, data: w.read().dataSync() as Float32Array, shape: w.shape as number[], dtype: '<f' });
      }
    }
    f.close();
    const x0 = tf.randomUniform([2, 12, 12, 3], -3, 3, 'float32', 7);
    const loaded = await loadModelFile(tf, file);
    expect(difference((loaded.predict(x0) as Tensor).dataSync(), (source.predict(x0) as Tensor).dataSync()).maxAbs).toBeLessThan(1e-6);
    expect(loaded.getLayer('hard').getConfig().activation).toBe('hardSigmoid');
  }, 120_000);
});

describe('refusals', () => {
  it('refuses a Lambda layer, naming the layer, Lambda and the file', async () => {
    const file = join(goldens.dir, goldens.manifest.refused[0]!.file);
    const error = await loadModelFile(tf, file).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'ModelImportError', code: 'FEATHERSTACK_MODEL_IMPORT', layer: 'double', className: 'Lambda' });
    expect((error as Error).message).toMatch(/layer 'double' \(Lambda\) in .*lambda\.keras: Lambda layers hold Python code/);
  });

  it('refuses custom layers, custom activations, channels_first, non-float32 policies and classes tfjs lacks, by name', async () => {
    type Entry = { name: string; class_name: string; module?: string; registered_name?: string | null; config: Record<string, unknown> };
    const cases: [string, (l: Entry) => void, RegExp][] = [
      [
        'leaky',
        (l) => Object.assign(l, { module: 'my_pkg', class_name: 'Swishy', registered_name: 'MyPkg>Swishy' }),
        /layer 'leaky' \(Swishy\) in .*: Swishy is a custom layer/,
      ],
      [
        'conv_gelu',
        (l) => Object.assign(l.config, { data_format: 'channels_first' }),
        /layer 'conv_gelu' \(Conv2D\) in .*: data_format "channels_first" is not supported/,
      ],
      [
        'conv_tanh',
        (l) => Object.assign(l.config, { dtype: { module: 'keras', class_name: 'DTypePolicy', config: { name: 'mixed_float16' } } }),
        /dtype "mixed_float16" is not supported/,
      ],
      ['crop', (l) => Object.assign(l, { class_name: 'Cropping3D' }), /layer 'crop' \(Cropping3D\) in .*: tfjs has no layer class Cropping3D/],
      ['conv_elu', (l) => Object.assign(l.config, { activation: { module: 'builtins', class_name: 'function', config: 'my_act' } }), /is a custom function/],
    ];
    const zoo = golden('zoo');
    for (const [layer, edit, reason] of cases) {
      const file = await rewriteKeras(join(goldens.dir, zoo.files.keras), join(work, `refused-${layer}.keras`), (entries) => {
        const config = JSON.parse(new TextDecoder().decode(entries['config.json']!));
        edit(config.config.layers.find((l: Entry) => l.name === layer));
        entries['config.json'] = new TextEncoder().encode(JSON.stringify(config));
      });
      const error = await loadModelFile(tf, file).catch((e: Error) => e);
      expect(error, layer).toMatchObject({ name: 'ModelImportError', file, layer });
      expect((error as Error).message, layer).toMatch(reason);
    }
  });

  it('refuses a truncated .keras, a truncated .h5, a non-zip .keras, a missing file — naming the file', async () => {
    const zoo = golden('zoo');
    const keras = await readFile(join(goldens.dir, zoo.files.keras));
    const h5 = await readFile(join(goldens.dir, zoo.files.h5!));
    const cases: [string, Uint8Array | undefined, RegExp][] = [
      ['truncated.keras', keras.subarray(0, keras.length >> 1), /is a truncated or damaged zip archive/],
      ['truncated.h5', h5.subarray(0, h5.length >> 1), /cannot be opened as HDF5: truncated file/],
      ['text.keras', new TextEncoder().encode('hello, not a model\n'), /is named as a \.keras zip archive but is not one \(it starts with "hello, n"\)/],
      ['weights.h5', keras, /is named as an HDF5 file but is not one/],
      ['missing.keras', undefined, /cannot be read \(ENOENT\)/],
    ];
    for (const [name, bytes, reason] of cases) {
      const file = join(work, name);
      if (bytes !== undefined) await writeFile(file, bytes);
      const error = await loadModelFile(tf, file).catch((e: Error) => e);
      expect(error, name).toMatchObject({ name: 'ModelFileError', path: file });
      expect((error as Error).message, name).toMatch(reason);
    }
  });

  it('refuses a weight whose shape the (hand-edited) config contradicts, naming layer, weight, both shapes and file', async () => {
    const zoo = golden('zoo');
    const file = await rewriteKeras(join(goldens.dir, zoo.files.keras), join(work, 'edited.keras'), (entries) => {
      const text = new TextDecoder().decode(entries['config.json']!);
      const config = JSON.parse(text);
      const dense = config.config.layers.find((l: { name: string }) => l.name === 'predictions');
      dense.config.units = 12;
      entries['config.json'] = new TextEncoder().encode(JSON.stringify(config));
    });
    const error = await loadModelFile(tf, file).catch((e: Error) => e);
    expect(error).toMatchObject({ name: 'ModelImportError', layer: 'predictions' });
    expect((error as Error).message).toMatch(
      new RegExp(
        `layer 'predictions' \\(Dense\\) in ${file.replace(/[.\\]/g, '\\$&')}: weight 'kernel': the file holds shape \\[96, 10\\] \\(.*\\) where the layer needs \\[96, 12\\]`,
      ),
    );
  });
});

/** IEEE half-precision bits of a normal float32 (round half up); the tests use well-scaled values. */
function toHalf(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 112;
  if (exponent <= 0) return sign;
  return (sign | (exponent << 10) | ((bits >>> 13) & 0x3ff)) + ((bits >>> 12) & 1);
}
function fromHalf(h: number): number {
  const exponent = (h >>> 10) & 0x1f;
  const magnitude = exponent === 0 ? 0 : 2 ** (exponent - 15) * (1 + (h & 0x3ff) / 1024);
  return h & 0x8000 ? -magnitude : magnitude;
}

describe('tfjs model.json', () => {
  it('loads quantized weights (uint8, uint16, float16) as tfjs dequantizes them', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, name: 'conv' }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 4, name: 'dense' }),
      ],
    });
    model.setWeights(model.getWeights().map((w, i) => tf.randomUniform(w.shape, -1, 1, 'float32', i + 1)));
    const dir = join(work, 'quantized');
    await model.save(`file://${dir}`);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const specs = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string; quantization?: object }[];
    const schemes = ['uint8', 'float16', 'uint16', 'float16'];
    const expected: Float32Array[] = [];
    const chunks = model.getWeights().map((w, i) => {
      const v = w.dataSync() as Float32Array;
      const scheme = schemes[i]!;
      if (scheme === 'float16') {
        const half = Uint16Array.from(v, toHalf);
        specs[i]!.quantization = { dtype: 'float16' };
        expected.push(Float32Array.from(half, fromHalf));
        return new Uint8Array(half.buffer);
      }
      const levels = scheme === 'uint8' ? 255 : 65535;
      const min = Math.min(...v);
      const scale = (Math.max(...v) - min) / levels;
      const levelsOf = Array.from(v, (x) => Math.round((x - min) / scale));
      const q = scheme === 'uint8' ? Uint8Array.from(levelsOf) : Uint16Array.from(levelsOf);
      specs[i]!.quantization = { dtype: scheme, min, scale };
      expected.push(Float32Array.from(q, (k) => Math.fround(k * scale + min)));
      return new Uint8Array(q.buffer);
    });
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    await writeFile(join(dir, json.weightsManifest[0].paths[0]), Buffer.concat(chunks));
    const loaded = await loadModelFile(tf, join(dir, 'model.json'));
    for (const [i, w] of loaded.getWeights().entries()) {
      expect(difference(w.dataSync(), expected[i]!).maxAbs, specs[i]!.name).toBeLessThan(1e-6);
    }
  });

  it('saves an imported model as model.json and loads it back with the Keras extensions (KerasReLU, Subtract, hardSwish, Normalization…)', async () => {
    for (const name of ['zoo', 'nested', 'MobileNetV3Small']) {
      const g = golden(name);
      const imported = await loadModelFile(tf, join(goldens.dir, g.files.keras));
      await imported.save(`file://${join(work, `saved-${name}`)}`);
      (await expectKerasPredictions(join(work, `saved-${name}`, 'model.json'), g, `${name} → model.json`)).dispose();
      imported.dispose();
    }
  }, 180_000);
});

describe('Keras 3 activations registered with tfjs', () => {
  it('computes kerasHardSigmoid, hardSwish and leakyRelu as Keras 3 does, by name, idempotently', () => {
    registerKerasExtensions(tf);
    registerKerasExtensions(tf);
    const x = tf.tensor([-4, -3, -1, 0, 1, 2.5, 3, 4]);
    const apply = (activation: string) => Array.from((tf.layers.activation({ activation: activation as never }).apply(x) as Tensor).dataSync());
    const hardSigmoid = [-4, -3, -1, 0, 1, 2.5, 3, 4].map((v) => Math.min(Math.max(v + 3, 0), 6) / 6);
    expect(difference(apply('kerasHardSigmoid'), hardSigmoid).maxAbs).toBeLessThan(1e-7);
    expect(
      difference(
        apply('hardSwish'),
        hardSigmoid.map((h, i) => h * x.dataSync()[i]!),
      ).maxAbs,
    ).toBeLessThan(1e-6);
    expect(difference(apply('leakyRelu'), [-0.8, -0.6, -0.2, 0, 1, 2.5, 3, 4]).maxAbs).toBeLessThan(1e-7);
    // tfjs's own hardSigmoid is Keras 2's 0.2x + 0.5: at x = 1 it is 0.7, Keras 3's 0.667.
    expect(apply('hardSigmoid')[4]).toBeCloseTo(0.7, 6);
  });
});
