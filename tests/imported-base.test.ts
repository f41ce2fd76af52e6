// `run --base` and `extract --model` with a real backbone that Keras 3 wrote (MobileNetV3Small from
// the import goldens: Rescaling inside, hard-swish, squeeze-and-excite, BatchNormalization): the
// frozen-base recipe end to end, the cut and pooling recorded, predict replaying them, and bad
// combinations refused by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import { tableFromIPC } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackboneGoldens, backboneGoldens } from '../packages/core/test/goldens.js';
import { bin } from './cli.js';

const root = join(import.meta.dirname, '..');
const featherstack = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
let goldens: BackboneGoldens;
let base: string;
beforeAll(async () => {
  goldens = await backboneGoldens();
  base = join(goldens.dir, 'MobileNetV3Small.keras');
}, 900_000);

describe('an imported Keras backbone as the base', () => {
  const out = mkdtempSync(join(tmpdir(), 'fs-imported-'));

  it('run --base trains only the head on frozen features, at the model’s input size, and predict replays the cut', () => {
    const run = featherstack(['run', '--base', base, '--data', SHIPPED_DATASET, '--out', join(out, 'run'), '--head-epochs', '2', '--pooling', 'none']);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /base: .*MobileNetV3Small\.keras, \d+ layers, input 96×96×3, frozen; features from '(.+)' \(the layer that feeds the top classifier 'logits'\)/,
    );
    const golden = goldens.manifest.models.find((m) => m.name === 'MobileNetV3Small')!;
    const table = tableFromIPC(readFileSync(join(out, 'run', 'features', 'train.arrow')));
    expect(table.schema.metadata.get('featherstack.pooling')).toBe('none');
    expect(table.schema.metadata.get('featherstack.preprocess')).toBe('none');
    const dimension = (table.getChild('features')!.get(0) as { length: number }).length;
    expect(dimension).toBeGreaterThan(0);
    const metadata = JSON.parse(readFileSync(join(out, 'run', 'model', 'featherstack.json'), 'utf8'));
    expect(metadata).toMatchObject({ inputShape: [96, 96, 3], colorMode: 'rgb', pooling: 'none', preprocess: 'none' });
    expect(golden.layers).toBeGreaterThan(100);
    const image = join(SHIPPED_DATASET, 'val', '0_t-shirt_top');
    const predict = featherstack(['predict', '--model', join(out, 'run', 'model'), image, '--json']);
    expect(predict.status, predict.stderr).toBe(0);
    const predictions = JSON.parse(predict.stdout) as { classes: unknown[] }[];
    expect(predictions.length).toBeGreaterThan(0);
    expect(predictions[0]!.classes.length).toBe(3);
  });

  it('extract --model cuts at --feature-layer, pools as asked, plans its batch, and runs on the compiled graph', () => {
    const file = join(out, 'pooled.arrow');
    const golden = goldens.manifest.models.find((m) => m.name === 'MobileNetV2')!;
    const result = featherstack([
      'extract',
      '--model',
      join(goldens.dir, golden.files.keras),
      '--data',
      join(SHIPPED_DATASET, 'val'),
      '--out',
      file,
      '--feature-layer',
      'out_relu',
      '--pooling',
      'max',
      '--preprocess',
      'tf',
      '--json',
    ]);
    expect(result.status, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ engine: 'graph', dimension: 1280, featureLayer: 'out_relu', pooling: 'max' });
    expect(summary.fallback).toBeUndefined();
    const table = tableFromIPC(readFileSync(file));
    expect(table.schema.metadata.get('featherstack.feature_layer')).toBe('out_relu');
    expect(table.schema.metadata.get('featherstack.preprocess')).toBe('tf');
  });

  it('refuses what cannot work, by name: a size the model does not take, an unknown layer or pooling, a Lambda layer', () => {
    const size = featherstack(['run', '--base', base, '--data', SHIPPED_DATASET, '--out', join(out, 'bad'), '--image-size', '28']);
    expect(size.status).toBe(1);
    expect(size.stderr).toContain('MobileNetV3Small.keras takes 96×96 images, not --image-size 28x28');
    const layer = featherstack(['extract', '--model', base, '--data', SHIPPED_DATASET, '--out', join(out, 'x.arrow'), '--feature-layer', 'nope']);
    expect(layer.status).toBe(1);
    expect(layer.stderr).toMatch(/featureLayer must be a layer of .*MobileNetV3Small\.keras \(layers: .*\), received "nope"/);
    const pooling = featherstack(['extract', '--model', base, '--data', SHIPPED_DATASET, '--out', join(out, 'x.arrow'), '--pooling', 'mean']);
    expect(pooling.status).toBe(2);
    expect(pooling.stderr).toContain("--pooling must be avg, max or none, received 'mean'");
    const lambda = featherstack(['run', '--base', join(goldens.dir, 'lambda.keras'), '--data', SHIPPED_DATASET, '--out', join(out, 'lambda')]);
    expect(lambda.status).toBe(1);
    expect(lambda.stderr).toMatch(/layer 'double' \(Lambda\).*lambda\.keras/);
  });
});
