import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import { bin } from './cli.js';

// Hostile flag values, configs and input files, as a fuzzing pass over the CLI found them (143
// combinations of every command's numeric flags, paths and formats). Each must fail with exit 1
// or 2 and a message naming the flag or file, never an internal error or a stack trace. The
// cases that did reach internals are marked "found".

const root = join(import.meta.dirname, '..');
const data = SHIPPED_DATASET;
const dir = mkdtempSync(join(tmpdir(), 'fs-hostile-'));
const INTERNAL = /\n\s+at |TypeError|ReferenceError|Cannot read properties|RangeError|Array buffer allocation|\[object Object\]|fieldsLength/;

function featherstack(args: string[]) {
  // Every run gets its own --out: the default (runs/latest) is locked while another test's run uses it.
  const out = args[0] === 'run' && !args.includes('--out') ? ['--out', mkdtempSync(join(dir, 'out-'))] : [];
  const r = spawnSync(process.execPath, [bin, ...args, ...out], { encoding: 'utf8', cwd: root, timeout: 120_000 });
  return { status: r.status, stderr: r.stderr };
}

let features: string;
beforeAll(() => {
  // A real feature file to damage: extract one from a quickly trained base.
  const out = join(dir, 'run');
  const run = spawnSync(process.execPath, [bin, 'run', '--out', out, '--base-epochs', '1', '--head-epochs', '1'], { encoding: 'utf8', cwd: root });
  expect(run.status, run.stderr).toBe(0);
  features = join(out, 'features', 'val.arrow');
  writeFileSync(join(dir, 'trunc.arrow'), readFileSync(features).subarray(0, 500));
  writeFileSync(join(dir, 'garbage.bin'), Buffer.from('garbage\u0000\u0001'));
  writeFileSync(join(dir, 'empty.arrow'), '');
  mkdirSync(join(dir, 'adir'));
  mkdirSync(join(dir, 'occupied'));
  writeFileSync(join(dir, 'occupied', 'mine.txt'), 'kept');
  // A pack whose packing died before pack.json: its shards and index, no manifest.
  mkdirSync(join(dir, 'half-pack'));
  writeFileSync(join(dir, 'half-pack', 'shard-00000.arrow'), readFileSync(features));
  writeFileSync(join(dir, 'bad.yaml'), 'data: [1,2');
  writeFileSync(join(dir, 'neg.yaml'), 'baseEpochs: -3');
  writeFileSync(join(dir, 'unknown.yaml'), 'nosuchkey: 1');
  writeFileSync(join(dir, 'aug.json'), '{"augment": {"rotationRange": "a lot"}}');
});

const cases: [string, () => string[], RegExp][] = [
  [
    'found: a truncated feature file to inspect',
    () => ['inspect', join(dir, 'trunc.arrow')],
    /trunc\.arrow is truncated or damaged: its 500 bytes end without the Arrow file footer/,
  ],
  [
    'found: a truncated training feature file',
    () => ['train-head', '--train', join(dir, 'trunc.arrow'), '--val', features, '--out', join(dir, 'th')],
    /feature file .*trunc\.arrow: is truncated or damaged/,
  ],
  [
    'found: a truncated file, streamed',
    () => ['train-head', '--stream', '100', '--train', join(dir, 'trunc.arrow'), '--val', features, '--out', join(dir, 'th')],
    /feature file .*trunc\.arrow: is truncated or damaged/,
  ],
  [
    'found: an integer beyond 2^53',
    () => ['run', '--base-epochs', '99999999999999999999'],
    /--base-epochs must be a positive integer, received '99999999999999999999'/,
  ],
  ['a non-numeric batch size', () => ['run', '--batch-size', 'abc'], /--batch-size must be a positive integer, received 'abc'/],
  ['a fractional worker count', () => ['run', '--workers', '2.5'], /--workers must be a positive integer, received '2.5'/],
  ['zero replicas', () => ['run', '--replicas', '0'], /--replicas must be a positive integer/],
  ['an image size without width', () => ['run', '--image-size', '28x'], /--image-size/],
  ['a three-part image size', () => ['run', '--image-size', '28x28x3'], /--image-size/],
  ['a dataset that is a file', () => ['run', '--data', join(dir, 'garbage.bin'), '--out', join(dir, 'x')], /garbage\.bin/],
  ['a dataset without train/ and val/', () => ['run', '--data', join(dir, 'adir'), '--out', join(dir, 'x')], /adir/],
  ['a config that is not YAML', () => ['run', '--config', join(dir, 'bad.yaml')], /bad\.yaml/],
  ['a config with a negative epoch count', () => ['run', '--config', join(dir, 'neg.yaml')], /neg\.yaml[\s\S]*baseEpochs/],
  ['a config with an unknown key', () => ['run', '--config', join(dir, 'unknown.yaml')], /unknown\.yaml[\s\S]*nosuchkey/],
  ['a config with a non-numeric augmentation', () => ['run', '--config', join(dir, 'aug.json')], /aug\.json[\s\S]*rotationRange/],
  ['a missing config', () => ['run', '--config', join(dir, 'none.yaml')], /none\.yaml/],
  ['an unknown augmentation key', () => ['run', '--augment', 'nope=1'], /nope/],
  ['augmentation that is not JSON', () => ['run', '--augment', '{bad json'], /--augment/],
  ['a negative zoom', () => ['run', '--augment', 'zoomRange=-1'], /zoomRange/],
  ['an empty feature file', () => ['inspect', join(dir, 'empty.arrow')], /empty\.arrow/],
  ['a directory as a feature file', () => ['train-head', '--train', join(dir, 'adir'), '--val', features, '--out', join(dir, 'th')], /adir/],
  [
    'garbage as the validation features',
    () => ['train-head', '--train', features, '--val', join(dir, 'garbage.bin'), '--out', join(dir, 'th')],
    /garbage\.bin/,
  ],
  ['hidden units that are not numbers', () => ['train-head', '--train', features, '--val', features, '--units', 'a,b'], /--units/],
  ['a recurrent head without units', () => ['train-head', '--train', features, '--val', features, '--recurrent', 'gru:0'], /--recurrent/],
  ['a model directory that is garbage', () => ['predict', '--model', join(dir, 'garbage.bin'), join(data, 'val')], /garbage\.bin/],
  ['a model directory without a model', () => ['evaluate', '--model', join(dir, 'adir'), '--data', join(data, 'val')], /adir.*featherstack\.json/],
  [
    'a base model that is garbage',
    () => ['extract', '--model', join(dir, 'garbage.bin'), '--data', join(data, 'val'), '--out', join(dir, 'x.arrow')],
    /garbage\.bin/,
  ],
  [
    'a shard beyond the count',
    () => ['extract', '--model', join(dir, 'm.json'), '--data', join(data, 'val'), '--out', join(dir, 'x.arrow'), '--shard', '3/2'],
    /--shard must be i\/n/,
  ],
  ['no images to predict', () => ['predict', '--model', join(dir, 'run', 'model'), join(dir, 'adir')], /no images in/],
  ['a top-k of zero', () => ['predict', '--model', join(dir, 'run', 'model'), '--top', '0', join(data, 'val')], /--top must be a positive integer/],
  [
    'a schedule of no known kind',
    () => ['train-head', '--train', features, '--val', features, '--schedule', 'linear'],
    /--schedule must be constant, cosine\[:MIN_LR\] or step:EVERY:FACTOR/,
  ],
  ['a step schedule that grows', () => ['run', '--schedule', 'step:2:1.5'], /--schedule must be .*received 'step:2:1\.5'/],
  ['run fine-tuning zero layers', () => ['run', '--fine-tune', '0'], /--fine-tune must be all or a positive number of layers, received '0'/],
  ['a fine-tuning learning rate of zero', () => ['run', '--fine-tune-lr', '0'], /--fine-tune-lr must be a positive number, received '0'/],
  [
    'run fine-tuning without an imported base',
    () => ['run', '--fine-tune', 'all'],
    /fineTune: fine-tunes an imported base, and there is none: give base \(--base FILE\)/,
  ],
  [
    'run training BatchNormalization without a fine-tuning phase',
    () => ['run', '--bn-train'],
    /bnTrain: trains BatchNormalization in the fine-tuning phase, and there is none: give fineTune \(--fine-tune all\|N\)/,
  ],
  [
    'run retraining the head without a fine-tuning phase',
    () => ['run', '--retrain-head'],
    /retrainHead: trains a head on the fine-tuned base’s features, and there is none: give fineTune \(--fine-tune all\|N\)/,
  ],
  ['a shuffle buffer of zero', () => ['run', '--shuffle-buffer', '0'], /--shuffle-buffer must be a positive integer, received '0'/],
  ['packing a directory that does not exist', () => ['pack', join(dir, 'nowhere'), join(dir, 'pack-out')], /dataset directory .*nowhere does not exist/],
  ['packing into shards of no size', () => ['pack', join(data, 'val'), join(dir, 'pack-out'), '--shard-size', '0'], /--shard-size must be a size such as 500M/],
  [
    'a JPEG quality over 100',
    () => ['pack', join(data, 'val'), join(dir, 'pack-out'), '--quality', '101'],
    /quality must be an integer from 1 to 100, received 101/,
  ],
  [
    'packing over a directory that holds no pack',
    () => ['pack', join(data, 'val'), join(dir, 'occupied'), '--overwrite'],
    /occupied is not empty and holds no pack; refusing to overwrite it/,
  ],
  [
    'a pack whose packing died (no pack.json) as --data',
    () => ['evaluate', '--model', join(dir, 'run', 'model'), '--data', join(dir, 'half-pack')],
    /pack .*half-pack: has no pack\.json \(not a pack, or its packing did not finish\)/,
  ],
  [
    'a plateau factor of 1',
    () => ['train-base', '--data', join(data, 'train'), '--reduce-on-plateau', '2:1'],
    /--reduce-on-plateau must be PATIENCE\[:FACTOR\]/,
  ],
  [
    'fine-tuning zero layers',
    () => ['train-base', '--data', join(data, 'train'), '--model', join(dir, 'run', 'model', 'model.json'), '--fine-tune', '0'],
    /--fine-tune must be all or a positive number of layers, received '0'/,
  ],
  [
    'fine-tuning a base of other channels',
    () => [
      'train-base',
      '--data',
      join(data, 'train'),
      '--model',
      join(dir, 'run', 'model', 'model.json'),
      '--color-mode',
      'rgb',
      '--epochs',
      '1',
      '--out',
      join(dir, 'ft'),
    ],
    /--color-mode rgb gives 3 channels, but .*model\.json takes 1/,
  ],
  [
    'a learning rate of zero',
    () => ['train-base', '--data', join(data, 'train'), '--learning-rate', '0'],
    /--learning-rate must be a positive number, received '0'/,
  ],
  [
    'class weights without a weight',
    () => ['train-head', '--train', features, '--val', features, '--class-weight', 'cat'],
    /--class-weight must be balanced or NAME=W/,
  ],
  [
    'class weights for a class the data lacks',
    () => ['train-head', '--train', features, '--val', features, '--class-weight', 'unicorn=2'],
    /options\.classWeight\.unicorn must be a class of the training data/,
  ],
  [
    'a best monitor of no known score',
    () => ['run', '--keep-best', '--best-monitor', 'f1'],
    /--best-monitor must be loss, acc, val_loss or val_acc, received 'f1'/,
  ],
  [
    'keeping the best base epoch without base validation',
    () => ['run', '--keep-best', '--no-validate-base', '--base-epochs', '1', '--head-epochs', '1'],
    /--keep-best and --reduce-on-plateau watch val_loss, a validation score the base has only without --no-validate-base/,
  ],
];

describe('training controls on the command line', () => {
  it('train-head follows --schedule and --reduce-on-plateau, keeps the best epoch and writes --csv-log', () => {
    const csv = join(dir, 'head-log.csv');
    const args = ['train-head', '--train', features, '--val', features, '--out', join(dir, 'controls'), '--epochs', '3', '--schedule', 'step:1:0.5'];
    const r = spawnSync(process.execPath, [bin, ...args, '--reduce-on-plateau', '5', '--keep-best', '--best-monitor', 'val_acc', '--csv-log', csv, '--json'], {
      encoding: 'utf8',
      cwd: root,
    });
    expect(r.status, r.stderr).toBe(0);
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('epoch,loss,acc,val_loss,val_acc,lr');
    expect(rows.slice(1).map((row) => Number(row.split(',')[5]))).toEqual([0.001, 0.0005, 0.00025]);
  });
});

describe('export to Keras on the command line', () => {
  it("writes the run's stacked model as a .keras archive with its image settings, and refuses a directory without a model by name", () => {
    const out = join(dir, 'stacked.keras');
    const r = spawnSync(process.execPath, [bin, 'export', '--model', join(dir, 'run', 'model'), '--out', out, '--json'], { encoding: 'utf8', cwd: root });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ out, layers: expect.any(Number) });
    // A zip names its entries in plain text (stored, not compressed, as Keras writes them).
    const archive = readFileSync(out);
    for (const entry of ['config.json', 'featherstack.json', 'metadata.json', 'model.weights.h5']) expect(archive.includes(entry), entry).toBe(true);
    const bad = spawnSync(process.execPath, [bin, 'export', '--model', join(dir, 'adir'), '--out', join(dir, 'none.keras')], { encoding: 'utf8', cwd: root });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/adir/);
    expect(bad.stderr).not.toMatch(INTERNAL);
  });
});

describe('hostile CLI inputs fail by name, never through internals', () => {
  it('refuses a base too large to train in this memory (1000×1000 on the seed CNN) before the first step, leaving no cache or lock', () => {
    const out = mkdtempSync(join(dir, 'big-'));
    const { status, stderr } = featherstack(['run', '--data', data, '--out', out, '--image-size', '1000x1000', '--base-epochs', '1', '--head-epochs', '1']);
    expect(status).toBe(1);
    expect(stderr).toMatch(
      /--image-size 1000x1000 with --batch-size 32: training the base CNN needs about [\d.]+ GiB \(503,868,618 parameters, [\d,]+ activations an image\), more than half of this machine's [\d.]+ GiB; lower --image-size or --batch-size/,
    );
    expect(stderr).not.toMatch(INTERNAL);
    expect(readdirSync(out)).toEqual([]);
  });

  for (const [what, args, message] of cases) {
    it(what, () => {
      const { status, stderr } = featherstack(args());
      expect([1, 2]).toContain(status);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(INTERNAL);
    });
  }
});
