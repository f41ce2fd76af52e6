import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { flowFromArray, flowFromDirectory, flowFromListing, flowFromManifest, listDirectory, loadImage, readManifest, siblingFlow } from '../dist/index.js';
import { tempDir, writeImage } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
  for (let i = 0; i < 6; i++) await writeImage(join(dir, 'img', `${i}.png`), { width: 8, height: 6, seed: i * 40 });
  const rows = [
    'filename,class,x,y',
    'img/0.png,zebra,0.5,1',
    'img/1.png,ant,1.5,2',
    'img/2.png,zebra,2.5,3',
    '"img/3.png",bee,3.5,4',
    'img/4.png,ant,4.5,5',
    'img/5.png,zebra,5.5,6',
  ];
  await writeFile(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
});

describe('manifests (Keras flow_from_dataframe)', () => {
  it('takes classes from the label column in code-point order, keeping row order', async () => {
    const m = await readManifest(join(dir, 'labels.csv'));
    expect(m.classNames).toEqual(['ant', 'bee', 'zebra']);
    expect(m.paths).toEqual(['img/0.png', 'img/1.png', 'img/2.png', 'img/3.png', 'img/4.png', 'img/5.png']);
    expect(Array.from(m.labels)).toEqual([2, 0, 2, 1, 0, 2]);
  });

  it('keeps only the rows of the given classes and reports the others by line', async () => {
    const m = await readManifest(join(dir, 'labels.csv'), { classes: ['zebra', 'ant'] });
    expect(Array.from(m.labels)).toEqual([0, 1, 0, 1, 0]);
    expect(m.excludedRows).toEqual([5]); // the bee, on line 5 of the file
  });

  it('splits the table as a whole: validation = the first fraction of rows', async () => {
    const val = await readManifest(join(dir, 'labels.csv'), { validationSplit: 0.34, subset: 'validation' });
    const train = await readManifest(join(dir, 'labels.csv'), { validationSplit: 0.34, subset: 'training' });
    expect(val.paths).toEqual(['img/0.png', 'img/1.png']);
    expect(train.paths).toHaveLength(4);
  });

  it('delivers raw target vectors and multi-output labels alongside the images', async () => {
    const raw = await flowFromManifest(join(dir, 'labels.csv'), {
      yCol: ['x', 'y'],
      classMode: 'raw',
      targetSize: [6, 8],
      batchSize: 4,
      shuffle: false,
      workers: 1,
    });
    const multi = await flowFromManifest(join(dir, 'labels.csv'), {
      yCol: ['x', 'y'],
      classMode: 'multi_output',
      targetSize: [6, 8],
      batchSize: 4,
      seed: 2,
      workers: 1,
    });
    try {
      const r = (await raw.epoch(0).next()).value!;
      expect(Array.from(r.labels()!)).toEqual([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]);
      const m = (await multi.epoch(0).next()).value!;
      const [xs, ys] = m.outputs();
      // Shuffled: each sample's outputs still belong to its own row (y = x + 0.5).
      expect(Array.from(ys!)).toEqual(Array.from(xs!, (x) => x + 0.5));
      expect(Array.from(xs!)).toEqual(m.paths.map((p) => Number(/(\d)\.png/.exec(p)![1]) + 0.5));
      expect(() => m.labels()).toThrow(/outputs\(\)/);
    } finally {
      await Promise.all([raw.close(), multi.close()]);
    }
  });

  it('reads Arrow manifests too', async () => {
    const table = tableFromArrays({ file: ['img/1.png', 'img/4.png'], label: ['b', 'a'] });
    await writeFile(join(dir, 'm.arrow'), tableToIPC(table, 'file'));
    const flow = await flowFromManifest(join(dir, 'm.arrow'), { xCol: 'file', yCol: 'label', classMode: 'sparse', targetSize: [6, 8], shuffle: false });
    try {
      const b = (await flow.epoch(0).next()).value!;
      expect(b.paths).toEqual(['img/1.png', 'img/4.png']);
      expect(Array.from(b.classIndex)).toEqual([1, 0]);
    } finally {
      await flow.close();
    }
  });

  it('names the file, row and column of bad manifest content', async () => {
    await writeFile(join(dir, 'bad.csv'), 'filename,x\nimg/0.png,1\nimg/1.png,abc\n');
    await expect(readManifest(join(dir, 'bad.csv'), { yCol: 'x', classMode: 'raw' })).rejects.toThrow(
      `manifest ${join(dir, 'bad.csv')}, row 3, column 'x': expected a number, found "abc"`,
    );
    await expect(readManifest(join(dir, 'bad.csv'), { yCol: 'label' })).rejects.toThrow(
      `manifest ${join(dir, 'bad.csv')} has no column 'label' (columns: filename, x)`,
    );
    await expect(readManifest(join(dir, 'missing.csv'))).rejects.toThrow(/cannot read manifest .*missing\.csv/);
    await expect(readManifest(join(dir, 'labels.txt'))).rejects.toThrow(/unsupported extension '\.txt'/);
    await writeFile(join(dir, 'broken.csv'), 'filename,class\n"img/0.png,a\n');
    await expect(readManifest(join(dir, 'broken.csv'))).rejects.toThrow(/broken\.csv is not valid CSV/);
    // Found by fuzzing: a truncated Arrow manifest reached apache-arrow's "reading 'fieldsLength'".
    const arrow = tableToIPC(tableFromArrays({ filename: ['img/0.png', 'img/1.png'], class: ['a', 'b'] }), 'file');
    await writeFile(join(dir, 'cut.arrow'), arrow.subarray(0, arrow.length - 40));
    await expect(readManifest(join(dir, 'cut.arrow'))).rejects.toThrow(
      `manifest ${join(dir, 'cut.arrow')} is truncated or damaged: its ${arrow.length - 40} bytes end without the Arrow file footer`,
    );
  });

  it('splits a dataset into disjoint shards that together cover it', async () => {
    const options = { targetSize: [6, 8] as [number, number], shuffle: false, workers: 1 };
    const whole = await flowFromManifest(join(dir, 'labels.csv'), options);
    const shards = await Promise.all([0, 1, 2].map((index) => flowFromManifest(join(dir, 'labels.csv'), { ...options, shard: { index, count: 3 } })));
    try {
      expect(shards.map((f) => f.filenames)).toEqual([
        ['img/0.png', 'img/3.png'],
        ['img/1.png', 'img/4.png'],
        ['img/2.png', 'img/5.png'],
      ]);
      expect(shards.flatMap((f) => Array.from(f.classes)).sort()).toEqual(Array.from(whole.classes).sort());
      await expect(flowFromManifest(join(dir, 'labels.csv'), { ...options, shard: { index: 3, count: 3 } })).rejects.toThrow(
        'options.shard must be { index, count } with integers 0 ≤ index < count',
      );
    } finally {
      await Promise.all([whole, ...shards].map((f) => f.close()));
    }
  });

  it('reports a missing file by path when its batch is loaded', async () => {
    await writeFile(join(dir, 'gone.csv'), 'filename,class\nimg/0.png,a\nimg/nope.png,b\n');
    const flow = await flowFromManifest(join(dir, 'gone.csv'), { targetSize: [6, 8], onError: 'skip', shuffle: false });
    try {
      for await (const b of flow) expect(b.paths).toEqual(['img/0.png']);
      expect(flow.skippedFiles.map((f) => f.path)).toEqual([join(dir, 'img/nope.png')]);
    } finally {
      await flow.close();
    }
  });
});

describe('in-memory arrays (Keras flow(x, y))', () => {
  const n = 10;
  const x = new Uint8Array(n * 4 * 5 * 1).map((_, i) => (i * 7) % 256);

  it('batches the pixels as given, with one-hot labels from y, on the worker pool', async () => {
    const flow = flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { y: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0], batchSize: 4, shuffle: false, workers: 2 });
    try {
      const batches = [];
      for await (const b of flow) batches.push({ images: Array.from(b.images), labels: Array.from(b.labels()!), paths: b.paths });
      expect(batches.map((b) => b.paths.length)).toEqual([4, 4, 2]);
      expect(batches.flatMap((b) => b.images)).toEqual(Array.from(x));
      expect(batches[0]!.labels).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
      expect(flow.classNames).toEqual(['0', '1', '2']);
    } finally {
      await flow.close();
    }
  });

  it('augments deterministically and keeps uint8 batches when asked', async () => {
    const make = (workers: number) =>
      flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { batchSize: 3, seed: 4, workers, dtype: 'uint8', augment: { rotationRange: 30, horizontalFlip: true } });
    const [a, b] = [make(1), make(2)];
    try {
      const ea = [];
      for await (const batch of a) ea.push(Array.from(batch.images));
      const eb = [];
      for await (const batch of b) eb.push(Array.from(batch.images));
      expect(eb).toEqual(ea);
      const first = (await a.epoch(0).next()).value!;
      expect(first.images).toBeInstanceOf(Uint8Array);
      expect(first.toRecordBatch().getChild('image')!.type.children[0]!.type.toString()).toBe('Uint8');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('validates shapes and labels', () => {
    expect(() => flowFromArray({ data: x, shape: [n, 4, 5, 2] })).toThrow(
      'options.x.shape must be [samples, height, width, channels] with channels 1, 3 or 4, received [10, 4, 5, 2]',
    );
    expect(() => flowFromArray({ data: x, shape: [n, 4, 4, 1] })).toThrow('options.x.data must be 160 values for shape [10, 4, 4, 1], received "200 values"');
    expect(() => flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { y: [1, 2] })).toThrow(
      'options.y must be 10 class indices (one per sample), received "2 values"',
    );
    expect(() => flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { y: Array(10).fill(0.5) })).toThrow(
      'options.y[0] must be a non-negative integer class index, received 0.5',
    );
    expect(() => flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { cache: 'x.arrow' } as never)).toThrow('options.cache must be unset for in-memory arrays');
    expect(() => flowFromArray({ data: x, shape: [n, 4, 5, 1] }, { dtype: 'uint8', augment: { rescale: 1 / 255 } })).toThrow(
      "options.dtype must be 'float32' when rescale",
    );
  });
});

describe('a listing made elsewhere (flowFromListing) and single files (loadImage)', () => {
  it('flowFromListing reads a slice of a listing in order, with its labels, and refuses a malformed listing by name', async () => {
    const root = await tempDir();
    for (const [i, c] of ['a', 'a', 'b', 'b'].entries()) await writeImage(join(root, c, `${i}.png`), { width: 6, height: 4, seed: i });
    const all = await listDirectory(root);
    const flow = await flowFromListing(
      { ...all, paths: all.paths.slice(1, 3), labels: all.labels.slice(1, 3) },
      { targetSize: [4, 6], batchSize: 8, shuffle: false, workers: 1 },
    );
    try {
      const batch = (await flow.epoch(0).next()).value!;
      expect(batch.paths).toEqual(['a/1.png', 'b/2.png']);
      expect(Array.from(batch.classIndex)).toEqual([0, 1]);
    } finally {
      await flow.close();
    }
    await expect(flowFromListing({ ...all, labels: all.labels.slice(1) })).rejects.toThrow(
      'options.listing must be { root, classNames, classIndices, paths, labels: Int32Array } with one label per path',
    );
    await expect(flowFromListing(null as never)).rejects.toThrow('options.listing must be');
  });

  it("siblingFlow reads the flow's own files (not listed again) with options of its own, and shares the pixel cache's stamp", async () => {
    const root = await tempDir();
    for (let i = 0; i < 6; i++) await writeImage(join(root, i % 2 ? 'b' : 'a', `${i}.png`), { width: 6, height: 4, seed: i });
    const cache = join(root, '..', `${root.split('/').pop()}-pixels.arrow`);
    const train = await flowFromDirectory(root, {
      targetSize: [4, 6],
      batchSize: 4,
      shuffle: true,
      seed: 3,
      workers: 1,
      cache,
      validationSplit: 0.34,
      subset: 'training',
      augment: { horizontalFlip: true },
    });
    // A file added after the training flow was made: the sibling has the training flow's files, not a new
    // listing. A file touched since: the sibling keeps the training flow's stamp, so both flows' cache keys agree.
    await writeImage(join(root, 'a', '9.png'), { width: 6, height: 4, seed: 9 });
    await utimes(join(root, train.filenames[0]!), new Date(2001, 0, 1), new Date(2001, 0, 1));
    const plain = await siblingFlow(train, { targetSize: [4, 6], batchSize: 8, shuffle: false, cache, augment: { rescale: 1 / 255 } });
    const fresh = await flowFromListing(
      { root: train.root, classNames: train.classNames, classIndices: train.classIndices, paths: train.filenames, labels: train.classes },
      { targetSize: [4, 6], batchSize: 8, shuffle: false, workers: 1, augment: { rescale: 1 / 255 } },
    );
    try {
      expect(plain.filenames).toEqual(train.filenames);
      expect(plain.filenames).not.toContain('a/9.png');
      expect(plain.shuffle).toBe(false);
      expect(plain.batchSize).toBe(8);
      // The training flow's first epoch writes the cache; the sibling (made before) then reads it, as the same key.
      for await (const _ of train.epoch(0));
      expect(train.cached).toBe(true);
      const a = (await plain.epoch(0).next()).value!;
      expect(plain.cached).toBe(true);
      const b = (await fresh.epoch(0).next()).value!;
      expect(a.paths).toEqual(b.paths);
      expect(Array.from(a.images)).toEqual(Array.from(b.images));
    } finally {
      await Promise.all([train.close(), plain.close(), fresh.close()]);
    }
    await expect(siblingFlow(train, { shard: { index: 0, count: 2 } } as never)).rejects.toThrow(
      'options.shard must be unset for a sibling flow (it reads the files of the flow it is made from, shard and all), received {"index":0,"count":2}',
    );
    await expect(siblingFlow({} as never)).rejects.toThrow('options.flow must be an ImageFlow');
    const array = flowFromArray({ data: new Uint8Array(2 * 4 * 4), shape: [2, 4, 4, 1] }, { workers: 1 });
    await expect(siblingFlow(array)).rejects.toThrow('siblingFlow: a flow over files only (this one reads an array)');
    await array.close();
  });

  it('loadImage refuses bad options by name and names the file it cannot load', async () => {
    const dir = await tempDir();
    const file = join(dir, 'x.png');
    await writeImage(file, { width: 6, height: 4 });
    await expect(loadImage(file, { colorMode: 'cmyk' as never })).rejects.toThrow(`options.colorMode must be 'grayscale', 'rgb' or 'rgba', received "cmyk"`);
    await expect(loadImage(file, { targetSize: [0, 4] })).rejects.toThrow('options.targetSize must be [height, width] of positive integers, received [0, 4]');
    await expect(loadImage(file, { interpolation: 'area' as never })).rejects.toThrow(
      `options.interpolation must be 'nearest', 'bilinear', 'bicubic', 'lanczos', 'box' or 'hamming', received "area"`,
    );
    await writeFile(join(dir, 'bad.png'), 'not an image');
    await expect(loadImage(join(dir, 'bad.png'))).rejects.toThrow(`cannot load image ${join(dir, 'bad.png')}: `);
    expect((await loadImage(file, { targetSize: [2, 3] })).data).toHaveLength(2 * 3 * 3);
  });
});
