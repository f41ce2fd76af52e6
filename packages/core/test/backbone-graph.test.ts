// The six keras.applications backbones (and the nested and layer-zoo models), imported from the
// files Keras 3 wrote and compiled into one TensorFlow graph each: no layer falls back to eager, and
// the graph's outputs and pooled features equal Keras's predict (goldens.ts, randomised
// BatchNormalization statistics). Float32 sums in another order differ in the last bits; the
// tolerance is 1e-4 of the output's scale (its largest magnitude), and the max seen is reported.
import { join } from 'node:path';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { featureExtractor, loadModelFile } from '../dist/index.js';
import { compileModel, GraphReplicas } from '../dist/internal.js';
import { type BackboneGoldens, backboneGoldens, readF32 } from './goldens.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
let goldens: BackboneGoldens;
beforeAll(async () => {
  goldens = await backboneGoldens();
}, 900_000);

type Model = Awaited<ReturnType<typeof loadModelFile>>;

/** The model's forward graph on the golden input; returns the compiled graph and its output. */
async function graphOutput(model: Model, precision: 'float32' | 'mixed-bfloat16' = 'float32') {
  const { dir, manifest } = goldens;
  const x = readF32(join(dir, manifest.input.file), manifest.input.shape);
  const compiled = compileModel(model, { train: false, precision });
  const replicas = GraphReplicas.open(compiled, { replicas: 2, threadsPerReplica: 1 });
  const rows = manifest.input.shape[0]!;
  const out = new Float32Array(rows * compiled.outputSize);
  try {
    await replicas.setWeights(model.getWeights().map((w) => w.dataSync() as Float32Array));
    await replicas.predict(x, rows, out);
  } finally {
    await replicas.close();
  }
  return { compiled, out };
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  const scale = Math.max(...expected.map(Math.abs));
  return Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!))) / scale;
}

const NAMES = ['MobileNetV2', 'MobileNetV3Small', 'ResNet50', 'EfficientNetB0', 'InceptionV3', 'DenseNet121', 'nested', 'zoo'];

describe('real backbones on the compiled graph', () => {
  for (const name of NAMES) {
    it(`${name}: compiles whole (no eager fallback), and its outputs and features equal Keras's predict`, async () => {
      const golden = goldens.manifest.models.find((m) => m.name === name);
      expect(golden, `${name} is among the goldens`).toBeDefined();
      const model = await loadModelFile(tf, join(goldens.dir, golden!.files.keras));
      try {
        const { compiled, out } = await graphOutput(model);
        expect(out.length).toBe(golden!.outputShape.reduce((a, b) => a * b, 1));
        const outputError = relativeError(out, readF32(join(goldens.dir, golden!.files.output), golden!.outputShape));
        let featureError = 0;
        if (golden!.featuresLayer && golden!.files.features) {
          const extractor = featureExtractor(tf, model, golden!.featuresLayer);
          featureError = relativeError((await graphOutput(extractor)).out, readF32(join(goldens.dir, golden!.files.features), golden!.featuresShape!));
        }
        console.log(
          `${name}: ${compiled.layers} layers compiled, ${compiled.folded} BatchNormalizations folded; relative error output ${outputError.toExponential(2)}, features ${featureError.toExponential(2)}`,
        );
        expect(outputError).toBeLessThan(1e-4);
        expect(featureError).toBeLessThan(1e-4);
      } finally {
        model.dispose();
      }
    }, 300_000);
  }
});
