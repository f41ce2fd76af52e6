import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createImagePool, flowFromDirectory, type FlowOptions } from '../dist/index.js';
import { tempDir, withHooks, writeImage, writeText } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await tempDir();
  for (let i = 0; i < 23; i++)
    await writeImage(join(root, i % 3 === 0 ? 'a' : 'b', `${String(i).padStart(2, '0')}.png`), { width: 16, height: 12, seed: i * 11 });
});

const augmented: FlowOptions = {
  targetSize: [12, 16],
  batchSize: 5,
  seed: 3,
  augment: { rescale: 1 / 255, rotationRange: 15, zoomRange: 0.2, shearRange: 10, horizontalFlip: true, widthShiftRange: 0.1 },
};

async function collect(options: FlowOptions, epoch = 0, hooks = {}) {
  const flow = withHooks(await flowFromDirectory(root, options), hooks);
  const out: { images: Float32Array | Uint8Array; classIndex: number[]; paths: string[] }[] = [];
  try {
    for await (const b of flow.epoch(epoch)) out.push({ images: b.images.slice(), classIndex: Array.from(b.classIndex), paths: b.paths });
  } finally {
    await flow.close();
  }
  return out;
}

describe('flow over the worker pool', () => {
  it('delivers every sample once per epoch, in ceil(n / batchSize) batches with a short last batch', async () => {
    const batches = await collect(augmented);
    expect(batches.map((b) => b.paths.length)).toEqual([5, 5, 5, 5, 3]);
    const paths = batches.flatMap((b) => b.paths).sort();
    expect(new Set(paths).size).toBe(23);
    for (const b of batches) {
      for (const [i, p] of b.paths.entries()) expect(b.classIndex[i]).toBe(p.startsWith('a/') ? 0 : 1);
    }
  });

  it('is bit-identical for 1 and 3 workers, even with worker completions reordered', async () => {
    const one = await collect({ ...augmented, workers: 1 });
    const three = await collect({ ...augmented, workers: 3, prefetch: 3 }, 0, { jitterMs: 15 });
    expect(three.map((b) => b.paths)).toEqual(one.map((b) => b.paths));
    for (let i = 0; i < one.length; i++) expect(Buffer.from(three[i]!.images.buffer).equals(Buffer.from(one[i]!.images.buffer))).toBe(true);
  });

  it('gives a new order and new augmentations each epoch, and repeats them for the same seed', async () => {
    const e0 = await collect(augmented, 0);
    const e1 = await collect(augmented, 1);
    const again = await collect(augmented, 1);
    expect(e1.map((b) => b.paths)).not.toEqual(e0.map((b) => b.paths));
    expect(again.map((b) => Array.from(b.images))).toEqual(e1.map((b) => Array.from(b.images)));
  });

  it('without augmentation or shuffling yields the decoded pixels, rescaled, in file order', async () => {
    const batches = await collect({ targetSize: [12, 16], batchSize: 8, shuffle: false, augment: { rescale: 1 / 255 } });
    expect(batches[0]!.paths[0]).toBe('a/00.png');
    // writeImage's pixel (r, c, k) = (seed + 7r + 3c + 50k) mod 256 with seed 0 for image 00.
    const px = (r: number, c: number, k: number) => batches[0]!.images[(r * 16 + c) * 3 + k]!;
    expect(px(2, 5, 1)).toBeCloseTo((7 * 2 + 3 * 5 + 50) / 255, 6);
    expect(px(11, 15, 2)).toBeCloseTo((7 * 11 + 3 * 15 + 100) / 255, 6);
  });

  it('exposes each batch as an Arrow RecordBatch over the same shared memory', async () => {
    const flow = await flowFromDirectory(root, { ...augmented, colorMode: 'grayscale' });
    try {
      for await (const b of flow) {
        const rb = b.toRecordBatch();
        expect(rb.numRows).toBe(b.size);
        const values = rb.getChild('image')!.data[0]!.children[0]!.values as Float32Array;
        expect(values.buffer).toBe(b.images.buffer);
        expect(values.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(rb.getChild('path')!.get(0)).toBe(b.paths[0]);
        expect(b.shape).toEqual([b.size, 12, 16, 1]);
        break;
      }
    } finally {
      await flow.close();
    }
  });

  it('builds one-hot labels for categorical mode and class indices for sparse mode', async () => {
    const flow = await flowFromDirectory(root, { ...augmented, classMode: 'sparse' });
    const cat = await flowFromDirectory(root, { ...augmented });
    try {
      const s = (await flow.epoch(0).next()).value!;
      expect(Array.from(s.labels()!)).toEqual(Array.from(s.classIndex));
      const c = (await cat.epoch(0).next()).value!;
      const onehot = c.labels()!;
      expect(onehot.length).toBe(c.size * 2);
      for (let i = 0; i < c.size; i++) expect(onehot[i * 2 + c.classIndex[i]!]).toBe(1);
    } finally {
      await Promise.all([flow.close(), cat.close()]);
    }
  });
});

describe('bad input', () => {
  it('reports a corrupt image by path and does not hang', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'x', 'good.png'));
    await writeText(join(dir, 'x', 'text.png'), 'this is not a png');
    const truncated = join(dir, 'x', 'truncated.png');
    await copyFile(join(root, 'a', '00.png'), truncated);
    await writeFile(truncated, (await import('node:fs')).readFileSync(truncated).subarray(0, 40));
    const flow = await flowFromDirectory(dir, { targetSize: [10, 12], batchSize: 4, workers: 2 });
    try {
      await expect(async () => {
        for await (const _ of flow) void _;
      }).rejects.toThrow(/cannot load image .*x\/(text|truncated)\.png: /);
    } finally {
      await flow.close();
    }
  });

  it("onError: 'skip' delivers every good image and reports each bad file by path, as an event and at epoch end", async () => {
    const dir = await tempDir();
    for (let i = 0; i < 9; i++) await writeImage(join(dir, 'x', `good${i}.png`), { seed: i });
    await writeText(join(dir, 'x', 'bad-text.png'), 'not an image');
    await writeText(join(dir, 'x', 'empty.jpg'), '');
    const events: string[] = [];
    const flow = await flowFromDirectory(dir, {
      targetSize: [10, 12],
      batchSize: 4,
      workers: 2,
      shuffle: false,
      onError: 'skip',
      augment: { rescale: 1 / 255 },
      onSkip: (f) => events.push(f.path),
    });
    try {
      const seen: string[] = [];
      let pixelsOk = true;
      for await (const b of flow) {
        seen.push(...b.paths);
        expect(b.images.length).toBe(b.size * 10 * 12 * 3);
        // Compacted samples keep their own pixels: image goodN has pixel (0,0,0) = N / 255.
        b.paths.forEach((p, i) => {
          const n = Number(/good(\d)/.exec(p)![1]);
          if (Math.abs(b.images[i * 360]! - n / 255) > 1e-6) pixelsOk = false;
        });
      }
      expect(pixelsOk).toBe(true);
      expect(seen.sort()).toEqual(Array.from({ length: 9 }, (_, i) => `x/good${i}.png`));
      expect(flow.skippedFiles.map((f) => f.path.split('/').pop()).sort()).toEqual(['bad-text.png', 'empty.jpg']);
      // Named as batches and flow.filenames name files too, beside the absolute path.
      expect(flow.skippedFiles.map((f) => f.filename).sort()).toEqual(['x/bad-text.png', 'x/empty.jpg']);
      for (const f of flow.skippedFiles) expect(f.path.endsWith(`/${f.filename}`)).toBe(true);
      expect(flow.skippedFiles.every((f) => flow.filenames.includes(f.filename))).toBe(true);
      expect(flow.skippedFiles.every((f) => f.reason.length > 0 && f.epoch === 0)).toBe(true);
      expect(events.sort()).toEqual(flow.skippedFiles.map((f) => f.path).sort());
    } finally {
      await flow.close();
    }
    await expect(flowFromDirectory(dir, { onError: 'ignore' as never })).rejects.toThrow(`options.onError must be 'raise' or 'skip', received "ignore"`);
  });

  it('refuses images above the pixel limit (decompression bombs)', async () => {
    const dir = await tempDir();
    await writeImage(join(dir, 'x', 'big.png'), { width: 300, height: 200 });
    const flow = await flowFromDirectory(dir, { targetSize: [10, 10], pixelLimit: 10_000 });
    try {
      await expect(flow.epoch(0).next()).rejects.toThrow(/big\.png: .*pixel limit/i);
    } finally {
      await flow.close();
    }
  });

  it('validates options up front, naming the option and the value', async () => {
    await expect(flowFromDirectory(root, { batchSize: 0 })).rejects.toThrow('options.batchSize must be a positive integer, received 0');
    await expect(flowFromDirectory(root, { colorMode: 'cmyk' as never })).rejects.toThrow(
      `options.colorMode must be 'grayscale', 'rgb' or 'rgba', received "cmyk"`,
    );
    await expect(flowFromDirectory(root, { workers: 1.5 })).rejects.toThrow('options.workers must be a positive integer, received 1.5');
    await expect(flowFromDirectory(root, { classMode: 'binary', classes: ['a'] })).rejects.toThrow(/'binary' only with exactly 2 classes \(found 1\)/);
    await expect(flowFromDirectory(root, { targetSize: [0, 10] })).rejects.toThrow(
      'options.targetSize must be [height, width] of positive integers, received [0, 10]',
    );
    await expect(flowFromDirectory(root, { targetSize: 28 as never })).rejects.toThrow(
      'options.targetSize must be [height, width] of positive integers, received 28',
    );
    await expect(flowFromDirectory(root, { interpolation: 'area' as never })).rejects.toThrow(
      `options.interpolation must be 'nearest', 'bilinear', 'bicubic', 'lanczos', 'box' or 'hamming', received "area"`,
    );
    await expect(flowFromDirectory(root, { seed: 1.5 })).rejects.toThrow('options.seed must be an integer, received 1.5');
    await expect(flowFromDirectory(root, { prefetch: -1 })).rejects.toThrow('options.prefetch must be a positive integer, received -1');
    // Batches that cannot fit in memory are refused by name, up front (not "Array buffer allocation failed").
    await expect(flowFromDirectory(root, { batchSize: 1e9, workers: 1 })).rejects.toThrow(
      /options\.batchSize must be small enough that \d+ batches of 256×256×3 float32 images fit in half of this machine's .* GiB asked for; lower batchSize or targetSize\), received 1000000000/,
    );
    await expect(flowFromDirectory(root, { targetSize: [20000, 20000], workers: 1 })).rejects.toThrow(
      /options\.batchSize must be small enough .* 20000×20000×3 float32 images/,
    );
    await expect(flowFromDirectory(root, { pixelLimit: 0 })).rejects.toThrow('options.pixelLimit must be a positive integer, received 0');
    await expect(flowFromDirectory(root, { onSkip: 'log' as never })).rejects.toThrow('options.onSkip must be a function, received "string"');
    await expect(flowFromDirectory(root, { augment: { zoomRange: [2, 1] } })).rejects.toThrow(
      'options.augment.zoomRange must be a number in [0, 1) or [lo, hi] with 0 < lo ≤ hi, received [2, 1]',
    );
    await expect(flowFromDirectory(root, { dtype: 'int16' as never })).rejects.toThrow(`options.dtype must be 'float32' or 'uint8', received "int16"`);
    await expect(flowFromDirectory(root, { fastDecode: 'yes' as never })).rejects.toThrow('options.fastDecode must be a boolean, received "yes"');
    await expect(flowFromDirectory(root, { randomCrop: { scale: [0.5, 2] } })).rejects.toThrow(
      'options.randomCrop.scale must be [lo, hi] with 0 < lo ≤ hi ≤ 1, received [0.5, 2]',
    );
    await expect(flowFromDirectory(root, { cache: 42 as never })).rejects.toThrow('options.cache must be a file path, received 42');
    await expect(flowFromDirectory(root, { augment: { zcaEpsilon: 0 } })).rejects.toThrow('options.augment.zcaEpsilon must be a finite number > 0, received 0');
    const flow = await flowFromDirectory(root, augmented);
    expect(() => flow.epoch(0, { from: -1 })).toThrow('options.from must be a non-negative batch index, received -1');
    await flow.close();
  });

  it('refuses to start an epoch with a signal that is already aborted', async () => {
    const flow = await flowFromDirectory(root, augmented);
    try {
      await expect(flow.epoch(0, { signal: AbortSignal.abort(new Error('already stopped')) }).next()).rejects.toThrow('already stopped');
      // The flow is still usable afterwards.
      expect((await flow.epoch(0).next()).value!.size).toBe(5);
    } finally {
      await flow.close();
    }
  });

  it('lets running tasks finish on an abort instead of terminating their workers', async () => {
    // A worker terminated mid-task can take the process down (a native assertion when Node tears
    // down a thread stopped inside zlib); an abort cancels only tasks that have not started.
    const pool = createImagePool({ workers: 2 });
    const flow = withHooks(await flowFromDirectory(root, { ...augmented, pool }), { jitterMs: 30 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const controller = new AbortController();
        const it = flow.epoch(attempt, { signal: controller.signal });
        await it.next(); // the next batches are being decoded now
        controller.abort(new Error('stop now'));
        await expect(it.next()).rejects.toThrow('stop now');
      }
      expect(pool.workersLost).toBe(0);
      // The same workers go on serving epochs.
      let batches = 0;
      for await (const _ of flow.epoch(9)) batches++;
      expect(batches).toBe(flow.length);
    } finally {
      await flow.close();
      await pool.close();
    }
  });

  it('stops cleanly when aborted, and a closed flow refuses to iterate', async () => {
    const flow = withHooks(await flowFromDirectory(root, augmented), { jitterMs: 20 });
    const controller = new AbortController();
    const it = flow.epoch(0, { signal: controller.signal });
    await it.next();
    controller.abort(new Error('stop now'));
    await expect(it.next()).rejects.toThrow(/stop now|aborted/);
    await flow.close();
    await expect(flow.epoch(1).next()).rejects.toThrow(/closed/);
  });
});
