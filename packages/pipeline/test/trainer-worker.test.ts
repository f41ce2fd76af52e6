import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { type EpochLog, loadBaseModel } from '@featherstack/core';
import { type BaseJob, inProcessTrainer, progress, startTrainer } from '../dist/index.js';
import { SHIPPED_VAL } from '@featherstack/fixtures';

const data = SHIPPED_VAL;

async function job(epochs: number): Promise<BaseJob> {
  const out = await mkdtemp(join(tmpdir(), 'fs-trainer-'));
  return {
    train: data,
    targetSize: [28, 28],
    colorMode: 'grayscale',
    batchSize: 50,
    epochs,
    filters: [8],
    dense: [16],
    seed: 3,
    workers: 1,
    augment: { rescale: 1 / 255 },
    saveTo: join(out, 'base'),
  };
}

describe('trainer in a worker thread (comlink)', () => {
  it('trains with per-epoch progress while the caller’s event loop stays free, and saves the base', async () => {
    const trainer = startTrainer({ tfThreads: 2 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      expect((await trainer.api.tensorflow()).backend).toBe('tensorflow');
      const events: EpochLog[] = [];
      const spec = await job(2);
      const started = performance.now();
      const result = await trainer.api.trainBase(
        spec,
        progress((log) => events.push(log)),
      );
      const elapsed = performance.now() - started;
      expect(result.history).toHaveLength(2);
      expect(events.map((e) => e.epoch)).toEqual([0, 1]);
      expect(existsSync(result.model)).toBe(true);
      // The main thread kept ticking through training: most 5 ms slots fired.
      expect(ticks).toBeGreaterThan(elapsed / 5 / 3);
      const base = await loadBaseModel(loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 }), result.model);
      expect(base.outputs[0]!.shape).toEqual([null, 16]);
      base.dispose();
    } finally {
      clearInterval(timer);
      await trainer.close();
    }
  });

  it('cancels a running job from the caller', async () => {
    const trainer = startTrainer({ tfThreads: 2 });
    try {
      let cancelled = false;
      const running = trainer.api.trainBase(
        await job(50),
        progress(() => {
          if (!cancelled) {
            cancelled = true;
            void trainer.api.cancel('stop after the first epoch');
          }
        }),
      );
      await expect(running).rejects.toThrow(/stop after the first epoch/);
    } finally {
      await trainer.close();
    }
  });

  it('runs the same API in process, job after job without leaking tensors', async () => {
    const trainer = inProcessTrainer({ tfThreads: 2 });
    const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
    const result = await trainer.trainBase(await job(1));
    expect(result.history).toHaveLength(1);
    const after = tf.memory().numTensors;
    await trainer.trainBase(await job(1));
    expect(tf.memory().numTensors).toBe(after);
  });
});
