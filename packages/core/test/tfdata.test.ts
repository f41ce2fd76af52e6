import { flowFromDirectory, toTfDataset } from '@featherstack/images';
import { loadTensorFlow, type Tensor } from '@featherstack/tensorflow';
import { describe, expect, it } from 'vitest';
import { SHIPPED_VAL } from '@featherstack/fixtures';

const data = SHIPPED_VAL;
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const options = {
  targetSize: [28, 28] as [number, number],
  colorMode: 'grayscale' as const,
  batchSize: 50,
  shuffle: false,
  workers: 1,
  prefetch: 1,
  augment: { rescale: 1 / 255 },
};

describe('tf.data adapter', () => {
  it('feeds model.fitDataset, one flow epoch per dataset epoch', async () => {
    const flow = await flowFromDirectory(data, { ...options, shuffle: true, seed: 1 });
    try {
      const model = tf.sequential({
        layers: [tf.layers.flatten({ inputShape: [28, 28, 1] }), tf.layers.dense({ units: 10, activation: 'softmax' })],
      });
      model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
      const history = await model.fitDataset(toTfDataset<Parameters<typeof model.fitDataset>[0]>(flow, tf), { epochs: 3, verbose: 0 });
      const loss = history.history.loss as number[];
      expect(loss).toHaveLength(3);
      expect(loss[2]!).toBeLessThan(loss[0]!);
    } finally {
      await flow.close();
    }
  });

  it('builds tensors on the slots without copying, and never refills a slot a live tensor reads', async () => {
    const reference = await flowFromDirectory(data, options);
    const expected: Float32Array[] = [];
    for await (const b of reference) expected.push((b.images as Float32Array).slice());
    await reference.close();
    const flow = await flowFromDirectory(data, options); // prefetch 1: two slots
    try {
      const it = await (toTfDataset(flow, tf) as { iterator(): Promise<{ next(): Promise<{ value: { xs: Tensor; ys: Tensor } }> }> }).iterator();
      const held = [];
      for (let i = 0; i < 4; i++) held.push((await it.next()).value);
      for (let i = 0; i < 4; i++) {
        expect(Buffer.from((held[i]!.xs.dataSync() as Float32Array).buffer).equals(Buffer.from(expected[i]!.buffer))).toBe(true);
        expect(held[i]!.ys.shape).toEqual([50, 10]);
      }
      for (const e of held) tf.dispose([e.xs, e.ys]);
      // Holding four batches with two slots made the flow allocate more rather than overwrite them.
      expect((flow as unknown as { ring: { size: number } }).ring.size).toBeGreaterThan(2);
    } finally {
      await flow.close();
    }
  });
});
