import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBaseModel } from '@featherstack/core';
import { SHIPPED_VAL } from '@featherstack/fixtures';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { tableFromIPC } from 'apache-arrow';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { extractStage, lockOutputFile } from '../dist/index.js';

const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

describe('extract stage', () => {
  it('lets one extraction at a time write an output file; the other is refused by name and pid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-extract-lock-'));
    const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [4], dense: [8], seed: 2 });
    await base.save(`file://${join(dir, 'base')}`);
    base.dispose();
    const out = join(dir, 'features', 'val.arrow');
    const options = { model: join(dir, 'base', 'model.json'), data: SHIPPED_VAL, out, colorMode: 'grayscale' as const };
    const [first, second] = await Promise.allSettled([extractStage(options), extractStage(options)]);
    const results = [first, second];
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason.message).toBe(
      `${out} is being written by another featherstack process (pid ${process.pid}, lock ${out}.lock); wait for it, or choose another --out`,
    );
    // The file holds every row, and the lock is gone.
    expect(tableFromIPC(readFileSync(out)).numRows).toBe(500);
    expect(existsSync(`${out}.lock`)).toBe(false);
    // A lock left by a process that is gone (killed) is taken over.
    writeFileSync(`${out}.lock`, '999999999\n');
    const lock = await lockOutputFile(out);
    expect(readFileSync(`${out}.lock`, 'utf8')).toBe(`${process.pid}\n`);
    await lock.release();
  });

  it('refuses a model whose input declares no size or no colour mode, naming the flag to give', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-extract-input-'));
    const save = async (name: string, inputShape: (number | null)[]) => {
      const model = tf.sequential({
        layers: [tf.layers.conv2d({ inputShape, filters: 2, kernelSize: 3 }), tf.layers.globalAveragePooling2d({ name: 'features' })],
      });
      await model.save(`file://${join(dir, name)}`);
      model.dispose();
      return join(dir, name, 'model.json');
    };
    const any = await save('any-size', [null, null, 1]);
    const out = join(dir, 'f.arrow');
    await expect(extractStage({ model: any, data: SHIPPED_VAL, out })).rejects.toThrow(`--model ${any}: its input has no fixed size; give --image-size`);
    // Given, the size is used.
    expect((await extractStage({ model: any, data: SHIPPED_VAL, out, targetSize: [28, 28] })).rows).toBe(500);
    const two = await save('two-channels', [28, 28, 2]);
    await expect(extractStage({ model: two, data: SHIPPED_VAL, out })).rejects.toThrow(
      `--model ${two}: its input has 2 channels, which no colour mode gives; give --color-mode`,
    );
  });
});
