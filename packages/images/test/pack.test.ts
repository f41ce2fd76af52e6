import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { epochOrder } from '@featherstack/common';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { packOrder } from '../dist/pack/order.js';
import { flowFromData, flowFromDirectory, flowFromPack, flowFromTar, type ImageFlow, packDataset, readPackIndex } from '../dist/index.js';
import { tempDir, writeImage, writeText } from './helpers.js';

const fixtures = new URL('./fixtures/', import.meta.url).pathname;

/** Every batch of `epoch` (or from a resume): paths and a copy of the pixels. */
async function collect(batches: AsyncIterable<{ paths: string[]; images: Float32Array | Uint8Array; index: number }>) {
  const out: { index: number; paths: string[]; images: number[] }[] = [];
  for await (const b of batches) out.push({ index: b.index, paths: [...b.paths], images: Array.from(b.images) });
  return out;
}

/** Pixels by path over one unshuffled epoch. */
async function pixelsByPath(flow: ImageFlow): Promise<Map<string, number[]>> {
  const byPath = new Map<string, number[]>();
  const size = flow.image.height * flow.image.width * flow.image.channels;
  for await (const b of flow.epoch(0)) for (const [i, p] of b.paths.entries()) byPath.set(p, Array.from(b.images.subarray(i * size, (i + 1) * size)));
  return byPath;
}

let data: string;
let packs: string;
beforeAll(async () => {
  data = await tempDir('featherstack-pack-');
  packs = await tempDir('featherstack-packs-');
  // 3 classes × 30 images of varied sizes, so shards of 4 KiB hold a handful each.
  for (let i = 0; i < 90; i++)
    await writeImage(join(data, ['ant', 'bee', 'cat'][i % 3]!, `${String(i).padStart(3, '0')}.png`), {
      width: 14 + (i % 5),
      height: 11 + (i % 4),
      seed: i * 7,
    });
});

const options = {
  targetSize: [10, 12] as [number, number],
  batchSize: 8,
  seed: 3,
  dtype: 'uint8' as const,
  augment: { horizontalFlip: true, rotationRange: 15 },
};

describe('packDataset', () => {
  it('writes every image once, in a seeded order, into shards near the size asked for, with an index and checksums', async () => {
    const out = join(packs, 'basic');
    const { manifest } = await packDataset(data, out, { shardBytes: 4096 });
    expect(manifest.samples).toBe(90);
    expect(manifest.classNames).toEqual(['ant', 'bee', 'cat']);
    expect(manifest.shards.length).toBeGreaterThan(5);
    const index = await readPackIndex(out);
    expect(new Set(index.paths).size).toBe(90);
    expect([...index.listing].sort((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    expect([...index.listing]).not.toEqual(Array.from({ length: 90 }, (_, i) => i)); // stored shuffled
    for (const [i, p] of index.paths.entries()) expect(manifest.classNames[index.labels[i]!]).toBe(p.split('/')[0]);
    const { createHash } = await import('node:crypto');
    for (const s of manifest.shards) {
      const bytes = readFileSync(join(out, s.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.sha256);
      expect(bytes.length).toBe(s.bytes);
    }
    // Every shard but the last reaches the target; none is more than one image over it.
    const sizes = index.paths.map((p) => readFileSync(join(data, p)).length);
    expect(manifest.imageBytes).toBe(sizes.reduce((a, b) => a + b, 0));
    // The same seed writes the same pack.
    const again = await packDataset(data, join(packs, 'basic-again'), { shardBytes: 4096 });
    expect(again.manifest.shards.map((s) => s.sha256)).toEqual(manifest.shards.map((s) => s.sha256));
  });

  it('refuses bad options, a non-empty output and unreadable images by name', async () => {
    await expect(packDataset(data, join(packs, 'x'), { shardBytes: 0 })).rejects.toThrow(/shardBytes/);
    await expect(packDataset(data, join(packs, 'x'), { quality: 101 })).rejects.toThrow(/quality/);
    await expect(packDataset(data, join(packs, 'x'), { maxSide: -1 })).rejects.toThrow(/maxSide/);
    const taken = join(packs, 'taken');
    await writeText(join(taken, 'notes.txt'), 'mine');
    await expect(packDataset(data, taken)).rejects.toThrow(/taken is not empty/);
    await expect(packDataset(data, taken, { overwrite: true })).rejects.toThrow(/holds no pack; refusing to overwrite/);
    expect(readFileSync(join(taken, 'notes.txt'), 'utf8')).toBe('mine');
    const broken = await tempDir();
    await mkdir(join(broken, 'a'));
    await symlink(join(broken, 'missing.png'), join(broken, 'a', 'gone.png'));
    await expect(packDataset(broken, join(packs, 'broken'))).rejects.toThrow(/cannot read .*gone\.png/);
    await expect(readFile(join(packs, 'broken', 'pack.json'))).rejects.toThrow();
  });

  it('re-encodes as JPEG under a size limit when asked, smaller on disk', async () => {
    const big = await tempDir();
    // Photograph-like noise: PNG cannot shrink it, JPEG at 50 px can.
    await mkdir(join(big, 'x'));
    let state = 7;
    for (let i = 0; i < 6; i++) {
      const pixels = Buffer.alloc(200 * 120 * 3, 0).map(() => {
        state = (Math.imul(state, 1103515245) + 12345) >>> 0;
        return state >>> 24;
      });
      await sharp(pixels, { raw: { width: 200, height: 120, channels: 3 } })
        .png()
        .toFile(join(big, 'x', `${i}.png`));
    }
    const { manifest } = await packDataset(big, join(packs, 'jpeg'), { maxSide: 50, quality: 80 });
    expect(manifest.encoding).toEqual({ kind: 'jpeg', maxSide: 50, quality: 80 });
    const original = await packDataset(big, join(packs, 'jpeg-original'));
    expect(manifest.imageBytes).toBeLessThan(original.manifest.imageBytes / 4);
    const flow = await flowFromPack(join(packs, 'jpeg'), { targetSize: [30, 50], shuffle: false, workers: 1, dtype: 'uint8' });
    try {
      expect((await pixelsByPath(flow)).size).toBe(6);
      const index = await readPackIndex(join(packs, 'jpeg'));
      const shard = readFileSync(join(packs, 'jpeg', manifest.shards[0]!.file));
      const jpeg = shard.subarray(shard.indexOf(Buffer.from([0xff, 0xd8, 0xff])));
      expect(await sharp(jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 50, height: 30 });
      expect(index.paths.length).toBe(6);
    } finally {
      await flow.close();
    }
  });
});

describe('flowFromPack', () => {
  it('decodes exactly the pixels of the loose files, for every Keras-parity golden file', async () => {
    // One class folder linking every loading and departure golden input.
    const goldens = await tempDir();
    await mkdir(join(goldens, 'all'));
    const extensions = new Set<string>();
    for (const sub of ['loading', 'departures']) {
      for (const name of readdirSync(join(fixtures, sub))) {
        if (name.endsWith('.json')) continue;
        extensions.add(name.split('.').pop()!.toLowerCase());
        await symlink(join(fixtures, sub, name), join(goldens, 'all', `${sub}-${name}`));
      }
    }
    const out = join(packs, 'goldens');
    const { manifest } = await packDataset(goldens, out, { shardBytes: 64 * 1024, extensions: [...extensions] });
    expect(manifest.samples).toBeGreaterThan(150);
    for (const settings of [
      { targetSize: [17, 23] as [number, number], colorMode: 'rgb' as const, interpolation: 'bilinear' as const },
      { targetSize: [9, 6] as [number, number], colorMode: 'rgba' as const, interpolation: 'lanczos' as const },
      { targetSize: [12, 12] as [number, number], colorMode: 'grayscale' as const, interpolation: 'nearest' as const },
    ]) {
      const common = { ...settings, shuffle: false, workers: 2, dtype: 'uint8' as const, onError: 'skip' as const };
      const loose = await flowFromDirectory(goldens, { ...common, extensions: [...extensions] });
      const packed = await flowFromPack(out, common);
      try {
        const [a, b] = [await pixelsByPath(loose), await pixelsByPath(packed)];
        expect(b.size).toBe(a.size);
        for (const [path, pixels] of a) expect(b.get(path), `${path} ${settings.colorMode}`).toEqual(pixels);
        expect(packed.skippedFiles.map((f) => f.filename).sort()).toEqual(loose.skippedFiles.map((f) => f.filename).sort());
      } finally {
        await Promise.all([loose.close(), packed.close()]);
      }
    }
  });

  it('visits every image once per epoch, in an order set by the seed and epoch alone: the same batches for any worker count', async () => {
    const out = join(packs, 'order');
    await packDataset(data, out, { shardBytes: 4096 });
    const flows = await Promise.all([1, 3].map((workers) => flowFromPack(out, { ...options, workers, shuffleBuffer: 16 })));
    try {
      const [one, three] = await Promise.all(flows.map((f) => collect(f.epoch(1))));
      expect(three).toEqual(one);
      const paths = one!.flatMap((b) => b.paths);
      expect(new Set(paths).size).toBe(90);
      const second = (await collect(flows[0]!.epoch(2))).flatMap((b) => b.paths);
      expect(second).not.toEqual(paths);
      expect(new Set(second).size).toBe(90);
    } finally {
      await Promise.all(flows.map((f) => f.close()));
    }
  });

  it('resumes mid-epoch from state() with exactly the remaining batches of an uninterrupted epoch', async () => {
    const out = join(packs, 'resume');
    await packDataset(data, out, { shardBytes: 4096 });
    const whole = await flowFromPack(out, { ...options, workers: 2 });
    const first = await flowFromPack(out, { ...options, workers: 2 });
    const later = await flowFromPack(out, { ...options, workers: 1 });
    try {
      const expected = await collect(whole.epoch(1));
      let state = first.state();
      let seen = 0;
      for await (const _ of first.epoch(1)) {
        state = first.state();
        if (++seen === 5) break;
      }
      expect(state).toMatchObject({ epoch: 1, batch: 5 });
      // A fresh flow (as after a crash) continues from the saved state.
      const rest = await collect(later.resumeFrom(JSON.parse(JSON.stringify(state))));
      expect(rest).toEqual(expected.slice(5));
      expect(later.state()).toMatchObject({ epoch: 2, batch: 0 });
      expect(() => whole.resumeFrom({ ...state, seed: 4 })).toThrow(/state.*seed 3/);
    } finally {
      await Promise.all([whole.close(), first.close(), later.close()]);
    }
  });

  it('resumes from the state a killed process last saved with exactly the batches it had not yet delivered', async () => {
    const out = join(packs, 'killed');
    await packDataset(data, out, { shardBytes: 4096 });
    const flowOptions = { ...options, workers: 2 };
    // The child saves flow.state() after every batch it consumes, as a training loop's checkpoint
    // does, and is killed (SIGKILL: no cleanup) once it has consumed 4 batches.
    const script = `
      import { writeFileSync } from 'node:fs';
      import { flowFromPack } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const flow = await flowFromPack(${JSON.stringify(out)}, ${JSON.stringify(flowOptions)});
      for await (const batch of flow.epoch(2)) {
        writeFileSync(${JSON.stringify(join(out, 'state.json'))}, JSON.stringify(flow.state()));
        process.stdout.write(JSON.stringify(batch.paths) + '\\n');
        await new Promise((r) => setTimeout(r, 50));
      }
      process.stdout.write('finished\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const delivered: string[][] = [];
    await new Promise<void>((resolve) => {
      let text = '';
      child.stdout.on('data', (chunk) => {
        text += chunk;
        const lines = text.split('\n');
        text = lines.pop()!;
        for (const line of lines) if (line.startsWith('[')) delivered.push(JSON.parse(line));
        if (delivered.length >= 4 && child.exitCode === null && !child.killed) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(child.signalCode).toBe('SIGKILL');
    const state = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8'));
    expect(state.batch).toBe(delivered.length);
    const whole = await flowFromPack(out, flowOptions);
    const resumed = await flowFromPack(out, { ...flowOptions, workers: 1 });
    try {
      const expected = await collect(whole.epoch(2));
      expect(delivered).toEqual(expected.slice(0, delivered.length).map((b) => b.paths));
      expect(await collect(resumed.resumeFrom(state))).toEqual(expected.slice(state.batch));
    } finally {
      await Promise.all([whole.close(), resumed.close()]);
    }
  });

  it('takes the same validation files as flow_from_directory, and splits shards across machines', async () => {
    const out = join(packs, 'split');
    const { manifest } = await packDataset(data, out, { shardBytes: 4096 });
    for (const subset of ['training', 'validation'] as const) {
      const dir = await flowFromDirectory(data, { ...options, validationSplit: 0.3, subset, workers: 1 });
      const pack = await flowFromPack(out, { ...options, validationSplit: 0.3, subset, workers: 1 });
      try {
        expect([...pack.filenames].sort()).toEqual([...dir.filenames].sort());
        for (const [i, p] of pack.filenames.entries()) expect(pack.classNames[pack.classes[i]!]).toBe(p.split('/')[0]);
      } finally {
        await Promise.all([dir.close(), pack.close()]);
      }
    }
    const parts = await Promise.all([0, 1, 2].map((index) => flowFromPack(out, { ...options, workers: 1, shard: { index, count: 3 } })));
    try {
      const all = parts.flatMap((p) => p.filenames);
      expect(all.length).toBe(90);
      expect(new Set(all).size).toBe(90);
      const batches = await collect(parts[1]!.epoch(0));
      expect(batches.flatMap((b) => b.paths).sort()).toEqual([...parts[1]!.filenames].sort());
    } finally {
      await Promise.all(parts.map((p) => p.close()));
    }
    await expect(flowFromPack(out, { shard: { index: 0, count: manifest.shards.length + 1 } })).rejects.toThrow(/at most the pack's \d+ shards/);
  });

  it('streams shards through a bounded shuffle buffer: no image leaves more than the buffer ahead of its place in the stream', () => {
    const groups = [50, 50, 50, 50, 7];
    const order = packOrder(groups, 5, 0, true, 20);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 207 }, (_, i) => i));
    // Stream position of each sample: the shards in the epoch's shard order (common's epochOrder).
    const starts = [0, 50, 100, 150, 200];
    const shardOrder = [...epochOrder(5, 5, 0, true)];
    expect(shardOrder).not.toEqual([0, 1, 2, 3, 4]);
    const positions = new Map<number, number>();
    let at = 0;
    for (const s of shardOrder) for (let i = starts[s]!; i < starts[s]! + groups[s]!; i++) positions.set(i, at++);
    for (const [out, i] of [...order].entries()) expect(out).toBeGreaterThanOrEqual(positions.get(i)! - 20);
    expect(packOrder(groups, 5, 0, false, 20)).toEqual(Uint32Array.from({ length: 207 }, (_, i) => i));
    expect(packOrder(groups, 5, 1, true, 20)).not.toEqual(order);
  });

  it('reads a pack through flowFromData, and names the pack, shard and image of what is wrong', async () => {
    const out = join(packs, 'damaged');
    const { manifest } = await packDataset(data, out, { shardBytes: 4096 });
    const viaData = await flowFromData(out, { ...options, workers: 1, cache: join(packs, 'unused.arrow') });
    expect(viaData.cachePlan).toEqual({ state: 'pack', path: out });
    await viaData.close();
    await expect(flowFromPack(out, { shuffleBuffer: 0 })).rejects.toThrow(/shuffleBuffer/);
    await expect(flowFromPack(out, { cache: 'x.arrow' } as never)).rejects.toThrow(/cache.*unset for a pack/);
    await expect(flowFromPack(out, { classes: ['ant', 'wasp'] })).rejects.toThrow(/classes.*ant, bee, cat/);
    await expect(flowFromPack(data)).rejects.toThrow(/has no pack\.json/);

    // One flipped byte inside an image: its CRC-32 fails, by path and shard; 'skip' keeps the rest.
    const file = join(out, manifest.shards[1]!.file);
    const bytes = readFileSync(file);
    const index = await readPackIndex(out);
    const victim = index.paths[index.shard.indexOf(1)]!;
    const image = readFileSync(join(data, victim));
    const at = bytes.indexOf(image);
    expect(at).toBeGreaterThan(0);
    bytes[at + 40]! ^= 0xff;
    writeFileSync(file, bytes);
    const raising = await flowFromPack(out, { ...options, shuffle: false, workers: 1 });
    await expect(collect(raising.epoch(0))).rejects.toThrow(new RegExp(`${victim}.*shard-00001\\.arrow.*CRC-32`));
    await raising.close();
    const skipping = await flowFromPack(out, { ...options, shuffle: false, workers: 1, onError: 'skip' });
    const batches = await collect(skipping.epoch(0));
    expect(batches.flatMap((b) => b.paths).length).toBe(89);
    expect(skipping.skippedFiles.map((f) => f.filename)).toEqual([victim]);
    await skipping.close();

    // A truncated shard is refused by name when the epoch reaches it.
    writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    const truncated = await flowFromPack(out, { ...options, shuffle: false, workers: 1 });
    await expect(collect(truncated.epoch(0))).rejects.toThrow(/pack shard .*shard-00001\.arrow is truncated/);
    await truncated.close();

    // A pack whose writer died (no pack.json) is refused.
    await rm(join(out, 'pack.json'));
    await expect(flowFromPack(out)).rejects.toThrow(/has no pack\.json \(not a pack, or its packing did not finish\)/);
    await writeFile(join(out, 'pack.json'), JSON.stringify({ ...manifest, version: 9 }));
    await expect(flowFromPack(out)).rejects.toThrow(/format version 9/);
  });
});

describe('flowFromTar (WebDataset shards)', () => {
  it('reads key.png + key.cls samples from brace-expanded tars, pixel for pixel as the loose files, in any worker count the same batches', async () => {
    const { create } = await import('tar');
    const staging = await tempDir();
    const shards = await tempDir('featherstack-tars-');
    // 3 tars of 30 samples each: the data's images, labelled by class index.
    const classes = ['ant', 'bee', 'cat'];
    const files = readdirSync(data, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(data.length + 1))
      .sort();
    for (let t = 0; t < 3; t++) {
      const members: string[] = [];
      for (const [i, f] of files.entries()) {
        if (i % 3 !== t) continue;
        const key = `s${String(i).padStart(4, '0')}`;
        await writeFile(join(staging, `${key}.png`), readFileSync(join(data, f)));
        await writeFile(join(staging, `${key}.cls`), String(classes.indexOf(f.split('/')[0]!)));
        members.push(`${key}.png`, `${key}.cls`);
      }
      await create({ file: join(shards, `train-${String(t).padStart(4, '0')}.tar`), cwd: staging }, members);
    }
    const tarOptions = { ...options, classNames: classes, shuffleBuffer: 16 };
    const pattern = join(shards, 'train-{0000..0002}.tar');
    const flows = await Promise.all([1, 2].map((workers) => flowFromTar(pattern, { ...tarOptions, workers })));
    // Unaugmented: augmentation is keyed by each flow's own sample index.
    const plain = { targetSize: options.targetSize, dtype: options.dtype, batchSize: 8, shuffle: false, workers: 2 };
    const unshuffled = await flowFromTar(shards, { ...plain, classNames: classes });
    const loose = await flowFromDirectory(data, plain);
    try {
      expect(flows[0]!.samples).toBe(90);
      const [one, two] = await Promise.all(flows.map((f) => collect(f.epoch(0))));
      expect(two).toEqual(one);
      expect(new Set(one!.flatMap((b) => b.paths)).size).toBe(90);
      // Labels come from .cls; pixels equal the loose file the sample was made from.
      const fromTar = await pixelsByPath(unshuffled);
      const fromFiles = await pixelsByPath(loose);
      for (const [path, pixels] of fromTar) {
        const i = Number(/s(\d{4})\.png$/.exec(path)![1]);
        expect(pixels, path).toEqual(fromFiles.get(files[i]!));
      }
      for (const [k, p] of unshuffled.filenames.entries()) {
        const i = Number(/s(\d{4})\.png$/.exec(p)![1]);
        expect(unshuffled.classNames[unshuffled.classes[k]!]).toBe(files[i]!.split('/')[0]);
      }
      const viaData = await flowFromData(shards, { ...options, workers: 1 });
      expect(viaData.samples).toBe(90);
      await viaData.close();
    } finally {
      await Promise.all([...flows, unshuffled, loose].map((f) => f.close()));
    }
    // A sample without its image, a class that is no index, a missing tar: refused by tar and key.
    await writeFile(join(staging, 'lonely.cls'), '1');
    await writeFile(join(staging, 'odd.png'), readFileSync(join(data, files[0]!)));
    await writeFile(join(staging, 'odd.cls'), 'cat');
    await create({ file: join(shards, 'bad-0.tar'), cwd: staging }, ['lonely.cls']);
    await create({ file: join(shards, 'bad-1.tar'), cwd: staging }, ['odd.png', 'odd.cls']);
    await expect(flowFromTar(join(shards, 'bad-0.tar'))).rejects.toThrow(/bad-0\.tar: sample 'lonely' has no image/);
    await expect(flowFromTar(join(shards, 'bad-1.tar'))).rejects.toThrow(/bad-1\.tar: sample odd\.png has class 'cat' in its \.cls, not a class index/);
    await expect(flowFromTar(join(shards, 'train-{0000..0009}.tar'))).rejects.toThrow(/train-0003\.tar cannot be read/);
    await expect(flowFromTar(pattern, { classNames: ['ant'] })).rejects.toThrow(/classNames.*at least 3 names/);
    // A tar rewritten after the flow indexed it (same count, other samples) is refused, not read with stale labels.
    const stale = await flowFromTar(join(shards, 'train-0000.tar'), { ...plain, classNames: classes });
    await create({ file: join(shards, 'train-0000.tar'), cwd: staging }, [
      'odd.png',
      'odd.cls',
      ...readdirSync(staging)
        .filter((f) => /^s\d+\.(png|cls)$/.test(f))
        .sort()
        .slice(2, 60),
    ]);
    await expect(collect(stale.epoch(0))).rejects.toThrow(
      /train-0000\.tar changed since the flow was made \(entry 0 is odd\.png, not s\d+\.png\); make the flow again/,
    );
    await stale.close();
  });
});
