import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_DATASET, SHIPPED_VAL } from '@featherstack/fixtures';
import { bin } from './cli.js';

/** ANSI SGR (colour/style) sequences; cursor movement is not one. */
const SGR = new RegExp(`${String.fromCharCode(27)}\\[\\d*(;\\d+)*m`, 'g');

function featherstack(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('featherstack CLI (as a user runs it)', () => {
  it('doctor --json reports the native TensorFlow backend, cores and libvips', () => {
    const { status, stdout } = featherstack(['doctor', '--json']);
    expect(status).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.backend).toBe('tensorflow');
    expect(report.tensorflowVersion).toMatch(/^2\.\d+/);
    expect(['download', 'wheel']).toContain(report.provisionedFrom);
    expect(report.cores).toBeGreaterThan(0);
    expect(report.libvips).toMatch(/^\d+\.\d+/);
    // The images package's build compiles its libjpeg-turbo addon here (bootstrap installs the headers).
    expect(report.jpeg).toEqual({ decoder: 'libjpeg-turbo' });
    // Pooled tensor memory and the thread plan `run` uses by default.
    expect(report.allocator.kind).toBe('bfc');
    expect(report.allocator.memoryLimitMB).toBeGreaterThan(0);
    expect(report.plan.replicas * report.plan.threadsPerReplica).toBeLessThanOrEqual(report.cores);
    expect(report.plan.decodeWorkers).toBe(report.cores);
    // The default pixel cache's place and budget: half the space free there.
    expect(report.pixelCache.dir).toBe(join('runs', 'latest', 'cache'));
    expect(report.pixelCache.freeBytes).toBeGreaterThan(0);
    expect(report.pixelCache.budgetBytes).toBe(Math.floor(report.pixelCache.freeBytes / 2));
  });

  describe('one run of the shipped subset, then its outputs in use', () => {
    let out: string;
    // biome-ignore lint/suspicious/noExplicitAny: the run's JSON, checked field by field below
    let result: any;
    // biome-ignore lint/suspicious/noExplicitAny: evaluation.json
    let evaluation: any;
    const trousers = join(SHIPPED_VAL, '1_trouser');
    beforeAll(async () => {
      out = await mkdtemp(join(tmpdir(), 'fs-run-'));
      const { status, stdout, stderr } = featherstack(['run', '--json', '--out', out]);
      expect(status, stderr).toBe(0);
      result = JSON.parse(stdout);
      evaluation = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8'));
    });

    it('run --json trains the stacked model to ≥ 0.70 validation accuracy on native TensorFlow and the graph engine', () => {
      expect(result.val_accuracy).toBeGreaterThanOrEqual(0.7);
      for (const stage of ['base_train', 'extract', 'head_train', 'total']) expect(result.seconds[stage]).toBeGreaterThan(0);
      // The base is scored on the validation images after every epoch (the report's base curves).
      expect(result.base.every((e: { valAcc?: number }) => typeof e.valAcc === 'number' && e.valAcc > 0.3)).toBe(true);
      expect(result.tensorflow.backend).toBe('tensorflow');
      // The base trained on the graph engine, on the thread plan's replicas.
      expect(result.base.every((e: { engine: string; replicas: number }) => e.engine === 'graph' && e.replicas === result.plan.replicas)).toBe(true);
    });

    it('writes feature files holding every image (validation in class order), the history and the evaluation', () => {
      const val = tableFromIPC(readFileSync(join(out, 'features', 'val.arrow')));
      expect(val.numRows).toBe(500);
      expect(val.getChild('label')!.get(0)).toBe(0);
      expect(tableFromIPC(readFileSync(join(out, 'features', 'train.arrow'))).numRows).toBe(2000);
      expect(JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'))).toEqual({ base: result.base, head: result.head });
      expect(evaluation.confusion).toHaveLength(10);
      expect(evaluation.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(500);
      expect(evaluation.accuracy).toBeCloseTo(result.val_accuracy, 4);
      expect(evaluation.perClass.map((m: { support: number }) => m.support)).toEqual(Array(10).fill(50));
      expect(result.evaluation.topK['3']).toBeGreaterThanOrEqual(evaluation.accuracy);
    });

    it('predict classifies images with the stacked model, agreeing with the run’s per-class recall', () => {
      const predicted = featherstack(['predict', '--model', join(out, 'model'), '--top', '2', '--json', trousers]);
      expect(predicted.status, predicted.stderr).toBe(0);
      const rows = JSON.parse(predicted.stdout) as { path: string; classes: { className: string; probability: number }[] }[];
      expect(rows).toHaveLength(50);
      expect(rows[0]!.path).toBe(join(trousers, readdirSync(trousers).sort()[0]!));
      expect(rows.every((r) => r.classes.length === 2 && r.classes[0]!.probability >= r.classes[1]!.probability)).toBe(true);
      const recall = evaluation.perClass[1].recall;
      expect(rows.filter((r) => r.classes[0]!.className === '1_trouser').length / 50).toBeCloseTo(recall, 6);
      const missing = featherstack(['predict', '--model', join(out, 'model'), '/nonexistent.png']);
      expect(missing.status).toBe(1);
      expect(missing.stderr).toContain('predict: /nonexistent.png does not exist');
    });

    it('predict walks a directory with a symlink loop: every image once, and the walk ends', async () => {
      const looped = await mkdtemp(join(tmpdir(), 'fs-loop-'));
      for (const f of readdirSync(trousers).sort().slice(0, 3)) cpSync(join(trousers, f), join(looped, f));
      symlinkSync(looped, join(looped, 'loop'));
      const loopRows = featherstack(['predict', '--model', join(out, 'model'), '--json', looped]);
      expect(loopRows.status, loopRows.stderr).toBe(0);
      const expected = readdirSync(trousers).sort().slice(0, 3);
      expect(JSON.parse(loopRows.stdout).map((r: { path: string }) => r.path)).toEqual(expected.map((f) => join(looped, f)));
    });

    it('evaluate over the image folders gives the numbers of the run’s evaluation of its features', () => {
      const evaluated = featherstack(['evaluate', '--json', '--model', join(out, 'model'), '--data', SHIPPED_VAL]);
      expect(evaluated.status, evaluated.stderr).toBe(0);
      const fromImages = JSON.parse(evaluated.stdout);
      expect(fromImages.confusion).toEqual(evaluation.confusion);
      expect(fromImages.accuracy).toBeCloseTo(evaluation.accuracy, 10);
    });

    it('inspect summarises the feature file (class balance) and the pixel cache, and refuses a non-Arrow file by name', () => {
      const features = JSON.parse(featherstack(['inspect', '--json', join(out, 'features', 'val.arrow')]).stdout);
      expect(features).toMatchObject({ kind: 'features', rows: 500 });
      expect(Object.values(features.classBalance)).toEqual(Array(10).fill(50));
      expect(features.classBalance['9_ankle_boot']).toBe(50);
      const cache = JSON.parse(featherstack(['inspect', '--json', join(out, 'cache', 'train-28x28-grayscale.arrow')]).stdout);
      expect(cache).toMatchObject({ kind: 'pixel-cache', rows: 2000, failedSamples: 0 });
      const notArrow = featherstack(['inspect', join(out, 'history.json')]);
      expect(notArrow.status).toBe(1);
      expect(notArrow.stderr).toContain(`inspect: ${join(out, 'history.json')} is not an Arrow IPC file`);
    });

    it('a run resumed from its last checkpoint restores the base (all epochs done) and ends identically', () => {
      const again = featherstack(['run', '--json', '--resume', '--out', out]);
      expect(again.status, again.stderr).toBe(0);
      const resumed = JSON.parse(again.stdout);
      expect(resumed.base).toEqual(result.base);
      expect(resumed.val_accuracy).toBe(result.val_accuracy);
      expect(resumed.seconds.base_train).toBeLessThan(result.seconds.base_train / 2);
    });
  });

  it('bench images --json measures the pipeline against the raw ceiling and marks absent peers "not run"', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'fs-bench-')), 'images.json');
    const chart = join(dirname(file), 'workers.png');
    const { status, stdout, stderr } = featherstack([
      'bench',
      'images',
      '--dataset',
      'shipped',
      '--repeats',
      '1',
      '--no-peers',
      '--json',
      file,
      '--chart',
      chart,
    ]);
    expect(status, stderr).toBe(0);
    const result = JSON.parse(stdout);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(result);
    expect(result).toMatchObject({ benchmark: 'images', images: 2000, size: 28, colorMode: 'grayscale' });
    expect(result.flows.map((f: { workers: number }) => f.workers)).toEqual(Array.from({ length: result.cores }, (_, i) => i + 1));
    expect(result.rawCeiling.imagesPerSecond).toBeGreaterThan(0);
    expect(result.ratios.vsRawCeiling).toBeGreaterThan(0);
    expect(result.pixelCache.cachedImagesPerSecond).toBeGreaterThan(0);
    expect(result.peers.kerasImageDataGenerator).toEqual({ status: 'not run', reason: '--no-peers' });
    expect(result.ratios.vsKerasImageDataGenerator).toBeNull();
    // The throughput-vs-workers chart is a real PNG.
    expect(readFileSync(chart).subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(readFileSync(chart).readUInt32BE(16)).toBe(640); // IHDR width
    const bad = featherstack(['bench', 'images', '--dataset', 'imagenet']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--dataset must be photos, fashion-mnist or shipped, received 'imagenet'");
  });

  it('stops cleanly on Ctrl-C and on SIGTERM, says what was saved and how to resume, and the resumed run completes', async () => {
    const interrupt = async (signal: 'SIGINT' | 'SIGTERM') => {
      const out = await mkdtemp(join(tmpdir(), `fs-${signal.toLowerCase()}-`));
      const child = spawn(process.execPath, [bin, 'run', '--out', out, '--base-epochs', '3', '--head-epochs', '1'], { cwd: join(import.meta.dirname, '..') });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
        if (stderr.includes('base epoch 1:') && !child.killed) child.kill(signal);
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { out, code, stderr };
    };
    // docker stop, systemd and Kubernetes send SIGTERM: the same clean stop, its own exit status, the lock released.
    const term = await interrupt('SIGTERM');
    expect(term.code, term.stderr).toBe(143);
    expect(term.stderr).toContain('featherstack: interrupted (SIGTERM).');
    expect(term.stderr).toContain(`Resume with: featherstack run --resume --out ${term.out}`);
    expect(existsSync(join(term.out, '.featherstack.lock'))).toBe(false);
    const { out, code, stderr } = await interrupt('SIGINT');
    expect(code).toBe(130);
    expect(stderr).toContain('featherstack: interrupted (SIGINT).');
    expect(stderr).toContain(`Resume with: featherstack run --resume --out ${out}`);
    const checkpoint = JSON.parse(readFileSync(join(out, 'checkpoints', 'base', 'checkpoint.json'), 'utf8'));
    expect(checkpoint.epochs).toBeGreaterThanOrEqual(1);
    const resumed = featherstack(['run', '--json', '--resume', '--out', out, '--base-epochs', '3', '--head-epochs', '1']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const result = JSON.parse(resumed.stdout);
    expect(result.base.map((e: { epoch: number }) => e.epoch)).toEqual([0, 1, 2]);
    expect(result.base[0]).toEqual(checkpoint.history[0]);
  });

  it('shows progress bars on a terminal (base, extraction, head: rate, ETA, scores), coloured unless NO_COLOR, and plain lines elsewhere', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-tty-'));
    const args = ['run', '--out', out, '--base-epochs', '1', '--head-epochs', '2'];
    // util-linux's script(1) runs the command on a pseudo-terminal.
    const onTerminal = (env: NodeJS.ProcessEnv) =>
      spawnSync('script', ['-qec', [process.execPath, bin, ...args].join(' '), '/dev/null'], {
        encoding: 'utf8',
        cwd: join(import.meta.dirname, '..'),
        env: { ...process.env, ...env },
      });
    const tty = onTerminal({ NO_COLOR: '' }); // empty: colours allowed (no-color.org)
    expect(tty.status, tty.stderr).toBe(0);
    const text = tty.stdout.replace(SGR, '');
    expect(text).toMatch(/base epoch 1 \[[=-]+\] \d+\/63 batches \| \d+ images\/s \| ETA \d+s \| loss \d\.\d{4} acc \d\.\d{4}/);
    expect(text).toMatch(/extract train \[[=-]+\] 8\/8 batches \| \d+ images\/s \| ETA \d+s/);
    expect(text).toMatch(/extract val \[[=-]+\] 2\/2 batches/);
    expect(text).toMatch(/head \[[=-]+\] 2\/2 epochs \| \d+ rows\/s \| ETA \d+s \| loss \d\.\d{4} acc \d\.\d{4} val_loss \d\.\d{4} val_acc \d\.\d{4}/);
    expect(tty.stdout).toContain('\u001b[32m[');
    const noColor = onTerminal({ NO_COLOR: '1' });
    expect(noColor.status).toBe(0);
    expect(noColor.stdout).toMatch(/head \[[=-]+\] 2\/2 epochs/);
    expect(noColor.stdout.match(SGR)).toBeNull(); // no SGR (colour) sequences at all
    const plain = featherstack(args);
    expect(plain.status).toBe(0);
    expect(plain.stderr).toMatch(/^base epoch 1: loss \d\.\d{4} acc \d\.\d{4} val_loss \d\.\d{4} val_acc \d\.\d{4} \(\d+ images\/s\)$/m);
    expect(plain.stderr).toMatch(/^head epoch 2\/2: loss \d\.\d{4} acc \d\.\d{4} val_loss \d\.\d{4} val_acc \d\.\d{4} \(\d+ rows\/s\)$/m);
    expect(plain.stderr).not.toContain('batches |');
    expect(plain.stderr).not.toContain('\u001b[');
  });

  it('packs the dataset with `featherstack pack` and runs the whole workflow from the packs', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-packed-'));
    for (const split of ['train', 'val']) {
      const packed = featherstack(['pack', join(SHIPPED_DATASET, split), join(out, 'data', split), '--shard-size', '64K']);
      expect(packed.status, packed.stderr).toBe(0);
      expect(packed.stdout).toMatch(new RegExp(`${split}: \\d+ images, 10 classes, \\d+ shards`));
      expect(packed.stderr).toMatch(/shard-00001\.arrow: \d+ images/);
    }
    const again = featherstack(['pack', join(SHIPPED_DATASET, 'val'), join(out, 'data', 'val')]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('is not empty (pass overwrite to replace it)');
    const run = featherstack(['run', '--json', '--data', join(out, 'data'), '--out', join(out, 'run'), '--base-epochs', '2', '--head-epochs', '3']);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.data).toEqual({
      train: 'pack',
      cache: `pixel cache: off, reading the pack ${join(out, 'data', 'train')} (its shards hold the encoded images)`,
    });
    expect(result.val_accuracy).toBeGreaterThanOrEqual(0.6);
    const features = tableFromIPC(readFileSync(join(out, 'run', 'features', 'val.arrow')));
    expect(features.numRows).toBe(readdirSync(SHIPPED_VAL).flatMap((c) => readdirSync(join(SHIPPED_VAL, c))).length);
    // Evaluating on the val pack equals evaluating on its loose files.
    const fromPack = featherstack(['evaluate', '--json', '--model', join(out, 'run', 'model'), '--data', join(out, 'data', 'val')]);
    const fromFiles = featherstack(['evaluate', '--json', '--model', join(out, 'run', 'model'), '--data', SHIPPED_VAL]);
    expect(fromPack.status, fromPack.stderr).toBe(0);
    expect(JSON.parse(fromPack.stdout).accuracy).toBe(JSON.parse(fromFiles.stdout).accuracy);
    expect(JSON.parse(fromPack.stdout).confusion).toEqual(JSON.parse(fromFiles.stdout).confusion);
  });

  it('runs the stages as separate commands — train-base (in a worker), extract (sharded), train-head — through files', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-stages-'));
    const data = SHIPPED_DATASET;
    const base = featherstack([
      'train-base',
      '--json',
      '--worker',
      '--data',
      join(data, 'train'),
      '--validation',
      join(data, 'val'),
      '--out',
      out,
      '--epochs',
      '2',
    ]);
    expect(base.status, base.stderr).toBe(0);
    expect(JSON.parse(base.stdout).history.map((h: { valAcc?: number }) => typeof h.valAcc)).toEqual(['number', 'number']);
    const model = join(out, 'base', 'model.json');
    for (const i of [0, 1]) {
      const part = featherstack([
        'extract',
        '--json',
        '--model',
        model,
        '--data',
        join(data, 'train'),
        '--shard',
        `${i}/2`,
        '--out',
        join(out, 'train', `part-${i}.arrow`),
      ]);
      expect(part.status, part.stderr).toBe(0);
      expect(JSON.parse(part.stdout).rows).toBe(1000);
    }
    expect(featherstack(['extract', '--json', '--model', model, '--data', join(data, 'val'), '--out', join(out, 'val.arrow')]).status).toBe(0);
    // --out need not exist yet: the trained head is saved into it (it used to fail on mkdir after training).
    const headOut = join(out, 'new', 'dir');
    const head = featherstack(['train-head', '--json', '--train', join(out, 'train'), '--val', join(out, 'val.arrow'), '--out', headOut, '--epochs', '5']);
    expect(head.status, head.stderr).toBe(0);
    const result = JSON.parse(head.stdout);
    expect(result.valAccuracy).toBeGreaterThan(0.5);
    expect(result.model).toBe(join(headOut, 'head', 'model.json'));
    expect(readdirSync(join(headOut, 'head')).sort()).toEqual(['model.json', 'weights.bin']);
    expect(JSON.parse(readFileSync(join(headOut, 'head-evaluation.json'), 'utf8')).confusion).toHaveLength(10);
    const badShard = featherstack(['extract', '--model', model, '--data', join(data, 'val'), '--out', join(out, 'x.arrow'), '--shard', '2/2']);
    expect(badShard.stderr).toContain("--shard must be i/n with 0 ≤ i < n (e.g. 0/4), received '2/2'");
  });

  it('train-base --feature-layer/--pooling: checked before training, recorded in model.json, and where extract cuts by default', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-cut-'));
    const data = join(SHIPPED_DATASET, 'train');
    const trainBase = (...extra: string[]) => featherstack(['train-base', '--json', '--data', data, '--out', out, '--epochs', '1', ...extra]);
    // A name the seed CNN has not: refused before any training, naming the option and the layers it has.
    const missing = trainBase('--feature-layer', 'conv9');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(
      /featureLayer must be a layer of model 'base' \(layers: input\d*, conv1, pool1, conv2, pool2, flatten, dense1, features\), received "conv9"/,
    );
    expect(missing.stderr).not.toContain('base epoch');
    expect(existsSync(join(out, 'base'))).toBe(false);
    // Global pooling needs a height and width: the dense 'features' has neither.
    const flat = trainBase('--pooling', 'avg');
    expect(flat.status).toBe(1);
    expect(flat.stderr).toContain("pooling must be 'none' for layer 'features', whose output [null,64] has no height and width");
    // pool2 of a 28×28 input is 5×5×64: average pooling gives 64 features.
    const cut = trainBase('--feature-layer', 'pool2', '--pooling', 'avg');
    expect(cut.status, cut.stderr).toBe(0);
    const model = join(out, 'base', 'model.json');
    expect(JSON.parse(readFileSync(model, 'utf8')).userDefinedMetadata.featherstack).toEqual({ featureLayer: 'pool2', pooling: 'avg' });
    const file = join(out, 'val.arrow');
    const extract = featherstack(['extract', '--model', model, '--data', join(SHIPPED_DATASET, 'val'), '--out', file]);
    expect(extract.status, extract.stderr).toBe(0);
    expect(extract.stderr).toContain("features from 'pool2' (recorded in the model file by train-base), pooling avg");
    const table = tableFromIPC(readFileSync(file));
    expect(table.schema.metadata.get('featherstack.feature_layer')).toBe('pool2');
    expect(table.schema.metadata.get('featherstack.pooling')).toBe('avg');
    expect(table.getChild('features')!.type.listSize).toBe(64);
    // Flags still win over what the file records.
    const flagged = featherstack([
      'extract',
      '--json',
      '--model',
      model,
      '--data',
      join(SHIPPED_DATASET, 'val'),
      '--out',
      join(out, 'b.arrow'),
      '--feature-layer',
      'dense1',
    ]);
    expect(flagged.status, flagged.stderr).toBe(0);
    expect(tableFromIPC(readFileSync(join(out, 'b.arrow'))).getChild('features')!.type.listSize).toBe(128);
  }, 120_000);

  it('run --feature-layer/--pooling cut the seed CNN where they say (not silently at features)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-run-cut-'));
    const run = featherstack(['run', '--json', '--out', out, '--base-epochs', '1', '--head-epochs', '1', '--feature-layer', 'pool1', '--pooling', 'max']);
    expect(run.status, run.stderr).toBe(0);
    // pool1 of 28×28 is 13×13×32: max pooling gives 32 features, recorded in the stacked model.
    expect(JSON.parse(run.stdout).features.dimension).toBe(32);
    const metadata = JSON.parse(readFileSync(join(out, 'model', 'featherstack.json'), 'utf8'));
    expect([metadata.featureLayer, metadata.pooling]).toEqual(['pool1', 'max']);
    const refused = featherstack(['run', '--out', join(out, 'x'), '--base-epochs', '1', '--feature-layer', 'nope']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("featureLayer must be a layer of model 'base'");
    expect(existsSync(join(out, 'x', 'checkpoints'))).toBe(false);
  }, 120_000);

  it('refuses a val/ whose class folders differ from train/, naming both, before training', async () => {
    const data = SHIPPED_DATASET;
    const dir = await mkdtemp(join(tmpdir(), 'fs-classes-'));
    cpSync(join(data, 'train'), join(dir, 'train'), { recursive: true });
    cpSync(join(data, 'val'), join(dir, 'val'), { recursive: true });
    rmSync(join(dir, 'val', '3_dress'), { recursive: true });
    const run = featherstack(['run', '--no-validate-base', '--data', dir, '--out', join(dir, 'out'), '--base-epochs', '1', '--head-epochs', '1']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${join(dir, 'val')} has classes ["0_t-shirt_top","1_trouser","2_pullover","4_coat"`);
    expect(run.stderr).toContain(`but ${join(dir, 'train')} has ["0_t-shirt_top","1_trouser","2_pullover","3_dress","4_coat"`);
    expect(run.stderr).toContain('validation must use the training classes');
    expect(existsSync(join(dir, 'out', 'checkpoints'))).toBe(false); // refused before any training
    // The decode pool opened for this run is closed while its workers may still be loading: Node
    // aborted the process (SIGABRT, "v8::Module::IsGraphAsync must be used on an instantiated
    // module") about one refused run in ten until close() waited for them. Repeat it to catch that.
    for (let i = 0; i < 8; i++) {
      const again = featherstack(['run', '--no-validate-base', '--data', dir, '--out', join(dir, 'out'), '--base-epochs', '1', '--head-epochs', '1']);
      expect(again.stderr).not.toContain('FATAL');
      expect(again.status).toBe(1);
    }
  }, 120_000);

  it('refuses a second run into an --out in use, naming the holder, and takes over a stale lock', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-lock-'));
    // A live holder: this test's own process.
    writeFileSync(join(out, '.featherstack.lock'), `${process.pid}\n`);
    const busy = featherstack(['run', '--out', out, '--base-epochs', '1', '--head-epochs', '1']);
    expect(busy.status).toBe(1);
    expect(busy.stderr).toContain(`${out} is in use by another featherstack run (pid ${process.pid}, lock ${join(out, '.featherstack.lock')})`);
    expect(existsSync(join(out, 'features'))).toBe(false);
    // A holder that is gone (a pid no process has): the run proceeds, and leaves no lock behind.
    writeFileSync(join(out, '.featherstack.lock'), '2147483646\n');
    const run = featherstack(['run', '--json', '--out', out, '--base-epochs', '1', '--head-epochs', '1', '--no-validate-base']);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(join(out, '.featherstack.lock'))).toBe(false);
  });

  it('takes options from a YAML or JSON config, flags overriding it, and names the exact key of a bad value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-config-'));
    writeFileSync(
      join(dir, 'run.yaml'),
      `out: ${join(dir, 'out')}\nimageSize: 28\nbaseEpochs: 1\nheadEpochs: 1\nvalidateBase: false\nreplicas: 2\ntfThreads: 1\nengine: graph\naugment: { rescale: 0.00392156862745098 }\n`,
    );
    const good = featherstack(['run', '--json', '--config', join(dir, 'run.yaml'), '--head-epochs', '2']);
    expect(good.status, good.stderr).toBe(0);
    const result = JSON.parse(good.stdout);
    expect(result.base).toHaveLength(1); // from the file
    expect(result.base[0].valAcc).toBeUndefined(); // validateBase: false, from the file
    expect(result.head).toHaveLength(2); // the flag wins
    expect(result.plan).toMatchObject({ replicas: 2, threadsPerReplica: 1 }); // from the file
    expect(result.base[0]).toMatchObject({ engine: 'graph', replicas: 2 });
    expect(result.features.train).toBe(join(dir, 'out', 'features', 'train.arrow'));
    writeFileSync(join(dir, 'bad.yaml'), 'baseEpochs: -1\ncolorMode: cmyk\nepochz: 3\nengine: xla\n');
    const bad = featherstack(['run', '--config', join(dir, 'bad.yaml')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`config ${join(dir, 'bad.yaml')} is invalid:`);
    expect(bad.stderr).toContain('baseEpochs: Too small');
    expect(bad.stderr).toContain('colorMode: Invalid option: expected one of "grayscale"|"rgb"|"rgba"');
    expect(bad.stderr).toContain('unknown key: epochz');
    expect(bad.stderr).toContain('engine: Invalid option: expected one of "graph"|"eager"');
    // --augment replaces the seed's augmentation; without rescale, training, extraction and the
    // saved model all see 0–255 pixels (never 1/255 in one place and 1 in another).
    const raw = featherstack(['run', '--json', '--out', join(dir, 'raw'), '--base-epochs', '1', '--head-epochs', '1', '--augment', 'horizontalFlip=true']);
    expect(raw.status, raw.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'raw', 'model', 'featherstack.json'), 'utf8')).rescale).toBe(1);
    const features = tableFromIPC(readFileSync(join(dir, 'raw', 'features', 'val.arrow')));
    expect(JSON.parse(features.schema.metadata.get('featherstack.augment')!).rescale).toBe(1);
    // Normalisation the stacked model cannot replay at inference is refused up front, by key.
    const featurewise = featherstack(['run', '--augment', 'rescale=1/255,featurewiseCenter=true']);
    expect(featurewise.status).toBe(1);
    expect(featurewise.stderr).toContain('augment.featurewiseCenter is not supported by the workflow (featherstack run)');
    writeFileSync(join(dir, 'broken.json'), '{ "baseEpochs": 1, }');
    expect(featherstack(['run', '--config', join(dir, 'broken.json')]).stderr).toContain(`config ${join(dir, 'broken.json')}: not valid JSON`);
  });

  it('bench all runs every suite into one directory with a summary, and bench readme puts it in a README', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'fs-bench-all-')), 'results');
    const { status, stderr } = featherstack(['bench', 'all', '--dataset', 'shipped', '--no-peers', '--repeats', '1', '--out', out]);
    expect(status, stderr).toBe(0);
    const suites = ['images', 'training', 'scaling', 'scaling-224', 'extraction', 'head', 'workflow', 'workflow-224'];
    expect(readdirSync(out).sort()).toEqual([...suites.flatMap((s) => [`${s}.json`, `${s}.md`, `${s}.png`]), 'summary.md'].sort());
    for (const suite of suites)
      expect(
        readFileSync(join(out, `${suite}.png`))
          .subarray(1, 4)
          .toString('latin1'),
        suite,
      ).toBe('PNG');
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    for (const title of ['### Image pipeline', '### Base training starvation', '### Feature extraction', '### Head training', '### Stacked workflow'])
      expect(summary).toContain(title);
    // Peers absent: their rows say so instead of disappearing.
    expect(JSON.parse(readFileSync(join(out, 'head.json'), 'utf8')).keras).toEqual({ status: 'not run', reason: '--no-peers' });
    const workflow = JSON.parse(readFileSync(join(out, 'workflow.json'), 'utf8'));
    for (const peer of ['keras', 'kerasBfc']) expect(workflow.rows[peer]).toEqual({ status: 'not run', reason: '--no-peers' });
    // Both precisions ran, each with its peak RSS and where its CPU time went.
    for (const row of ['featherstack', 'featherstackMixed']) {
      expect(workflow.rows[row].cpu.peakRssMB).toBeGreaterThan(0);
      expect(workflow.rows[row].cpu.threads.tensorflow).toBeGreaterThan(0);
    }
    expect(readFileSync(join(out, 'workflow.md'), 'utf8')).toContain('| Keras, as users run it | not run: --no-peers |');
    expect(readFileSync(join(out, 'extraction.md'), 'utf8')).toContain("| Keras, the seed's extract_features | not run (--no-peers) | |");
    const extraction = JSON.parse(readFileSync(join(out, 'extraction.json'), 'utf8'));
    expect(extraction.imagesPerSecond.workers.map((w: { workers: number }) => w.workers)).toEqual(Array.from({ length: extraction.cores }, (_, i) => i + 1));
    expect(extraction.ratios.ofCeiling).toBeGreaterThan(0);
    const head = JSON.parse(readFileSync(join(out, 'head.json'), 'utf8'));
    expect(head.featherstack.valAccuracy).toBeGreaterThan(0.5);
    // The scaling grid: every replicas × threads layout that fits the cores, each with its efficiency.
    const scaling = JSON.parse(readFileSync(join(out, 'scaling.json'), 'utf8'));
    const layouts = scaling.rows.filter((r: { efficiency?: number }) => r.efficiency !== undefined);
    expect(layouts.length).toBe(Array.from({ length: scaling.cores }, (_, r) => Math.floor(scaling.cores / (r + 1))).reduce((a, b) => a + b, 0));
    expect(scaling.rows.every((r: { imagesPerSecond: number; peakRssMB: number }) => r.imagesPerSecond > 0 && r.peakRssMB > 0)).toBe(true);
    expect(head.ratios.overLayersFit).toBeGreaterThan(0);

    // bench readme: the section between the markers is the summary, chart links relative to the README.
    const docs = join(out, '..', 'docs');
    mkdirSync(docs);
    const readme = join(docs, 'README.md');
    const start = '<!-- bench:start (generated by `featherstack bench readme`; edits between these lines are overwritten) -->';
    writeFileSync(readme, `# Title\n\n${start}\nold numbers\n<!-- bench:end -->\n\n## After\n`);
    const updated = featherstack(['bench', 'readme', '--results', out, '--readme', readme, '--json']);
    expect(updated.status, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toEqual({ readme, results: out });
    const text = readFileSync(readme, 'utf8');
    expect(text).not.toContain('old numbers');
    expect(text.startsWith(`# Title\n\n${start}\n`)).toBe(true);
    expect(text.endsWith('<!-- bench:end -->\n\n## After\n')).toBe(true);
    expect(text).toContain('![Feature extraction: images/s against decode workers](../results/extraction.png)');
    expect(text).toContain(readFileSync(join(out, 'head.md'), 'utf8').trim());
    writeFileSync(readme, '# no markers\n');
    const refused = featherstack(['bench', 'readme', '--results', out, '--readme', readme]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`${readme}: needs one line '${start}'`);
    writeFileSync(readme, `${start}\n<!-- bench:end -->\n`);
    const empty = featherstack(['bench', 'readme', '--results', docs, '--readme', readme]);
    expect(empty.stderr).toContain(`${join(docs, 'images.md')} does not exist`);
  });

  it('bench head marks its Keras row "not run" with the reason when Python tensorflow is missing', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-bench-head-'));
    // No python3 on PATH: what a machine without Python tensorflow sees.
    const result = spawnSync(
      process.execPath,
      [bin, 'bench', 'head', '--epochs', '1', '--repeats', '1', '--json', join(out, 'head.json'), '--markdown', join(out, 'head.md')],
      {
        encoding: 'utf8',
        env: { ...process.env, PATH: out },
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const head = JSON.parse(result.stdout);
    expect(head.keras).toEqual({ status: 'not run', reason: 'Python tensorflow is not installed (pip install tensorflow-cpu)' });
    expect(head.ratios.overKeras).toBeNull();
    expect(head.tfjsLayersFit.rowsPerSecond).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'head.md'), 'utf8')).toContain(
      '| Keras head.fit | not run (Python tensorflow is not installed (pip install tensorflow-cpu)) | | |',
    );
  });

  it('bench extraction and bench head refuse bad values by name', () => {
    const photos = featherstack(['bench', 'extraction', '--dataset', 'photos']);
    expect(photos.status).toBe(2);
    expect(photos.stderr).toContain("--dataset must be fashion-mnist or shipped, received 'photos'");
    const epochs = featherstack(['bench', 'head', '--epochs', '0']);
    expect(epochs.status).toBe(2);
    expect(epochs.stderr).toContain("--epochs must be a positive integer, received '0'");
  });

  it('exits with 2 for bad usage and 1 for a refused value, naming the flag (each parser is unit-tested in packages/cli)', () => {
    const { status, stderr } = featherstack(['run', '--batch-size', 'zero']);
    expect(status).toBe(2); // bad usage, as `run --help` documents
    expect(stderr).toContain("--batch-size must be a positive integer, received 'zero'");
    const unknown = featherstack(['run', '--epochs', '3']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("error: unknown option '--epochs'");
    expect(featherstack(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    // Unreasonable thread counts are refused before anything starts, naming the flag.
    const replicas = featherstack(['run', '--replicas', '500']);
    expect(replicas.status).toBe(1);
    expect(replicas.stderr).toMatch(/replicas \(--replicas\) must be at most \d+ on this machine \(\d+ cores: a replica needs a core\), received 500/);
    const workers = featherstack(['run', '--workers', '1000']);
    expect(workers.status).toBe(1);
    expect(workers.stderr).toMatch(/decode workers \(--workers\) must be at most \d+ on this machine .*received 1000/);
    const missing = featherstack(['run', '--data', '/nonexistent/dataset']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('dataset directory /nonexistent/dataset/train does not exist');
  });
});
