import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { cp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { flowFromDirectory, type FlowOptions, type ImageFlow } from '../dist/index.js';
import { tempDir, withHooks, writeImage, writeText } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await tempDir();
  for (let i = 0; i < 14; i++) await writeImage(join(root, i % 2 ? 'cat' : 'dog', `${i}.png`), { width: 20, height: 14, seed: i * 13 });
});

const options: FlowOptions = {
  targetSize: [12, 16],
  batchSize: 4,
  seed: 9,
  workers: 2,
  augment: { rotationRange: 20, zoomRange: 0.1, horizontalFlip: true, rescale: 1 / 255 },
};

async function epochs(flow: ImageFlow, which: number[]) {
  const out: { paths: string[]; images: number[] }[][] = [];
  for (const e of which) {
    const batches: { paths: string[]; images: number[] }[] = [];
    for await (const b of flow.epoch(e)) batches.push({ paths: b.paths, images: Array.from(b.images) });
    out.push(batches);
  }
  return out;
}

describe('worker death', () => {
  it('replaces a worker that dies and retries its task once, delivering the same batches', async () => {
    const reference = await flowFromDirectory(root, options);
    const crashing = withHooks(await flowFromDirectory(root, options), { crashOnAttempt: 0 });
    try {
      const [expected] = await epochs(reference, [0]);
      const [got] = await epochs(crashing, [0]);
      expect(got).toEqual(expected);
      expect(crashing.retries).toBeGreaterThanOrEqual(4); // every task crashed once
      expect(reference.retries).toBe(0);
    } finally {
      await Promise.all([reference.close(), crashing.close()]);
    }
  });

  it('fails with the task’s files named when the retry dies too, and does not hang', async () => {
    const flow = withHooks(await flowFromDirectory(root, options), { crashOnAttempt: 1 });
    try {
      await expect(flow.epoch(0).next()).rejects.toThrow(/a decode worker died twice while loading .*(cat|dog)\/\d+\.png.*worker exited with code: 70/);
    } finally {
      await flow.close();
    }
  });
});

describe('pixel cache', () => {
  it('writes uint8 pixels during the first epoch; later epochs read it and equal uncached epochs', async () => {
    const dir = await tempDir();
    const cache = join(dir, 'pixels.arrow');
    const plain = await flowFromDirectory(root, options);
    const cached = await flowFromDirectory(root, { ...options, cache });
    try {
      expect(cached.cached).toBe(false);
      const expected = await epochs(plain, [0, 1, 2]);
      const [first] = await epochs(cached, [0]);
      expect(cached.cached).toBe(true);
      expect(await readdir(dir)).toEqual(['pixels.arrow']); // no .partial left behind
      const rest = await epochs(cached, [1, 2]);
      expect([first, ...rest]).toEqual(expected);
    } finally {
      await Promise.all([plain.close(), cached.close()]);
    }
    // An ordinary Arrow IPC file: one row per sample, the cache key in the schema metadata.
    const table = tableFromIPC(readFileSync(cache));
    expect(table.numRows).toBe(14);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['sample', 'pixels', 'error', 'crc32']);
    expect(JSON.parse(table.schema.metadata.get('featherstack.pixel_cache')!)).toMatchObject({ height: 12, width: 16, channels: 3, samples: 14 });
    expect(Array.from(table.getChild('sample')!.toArray() as Uint32Array).sort((a, b) => a - b)).toEqual(Array.from({ length: 14 }, (_, i) => i));
  });

  it('is reused by a new flow while the files are unchanged, and refused when one is rewritten with its size and times restored', async () => {
    const data = await tempDir();
    await cp(root, data, { recursive: true });
    // Whole-second modification times, which utimes restores exactly.
    const when = 1_700_000_000;
    for (const f of await readdir(join(data, 'cat'))) utimesSync(join(data, 'cat', f), when, when);
    const cache = join(await tempDir(), 'c.arrow');
    const first = await flowFromDirectory(data, { ...options, cache });
    const [e0] = await epochs(first, [0]);
    const [e3] = await epochs(first, [3]);
    await first.close();
    const second = await flowFromDirectory(data, { ...options, cache });
    try {
      expect(second.cached).toBe(true);
      expect(await epochs(second, [0, 3])).toEqual([e0, e3]);
    } finally {
      await second.close();
    }
    // Other bytes with each file's size and modification time kept: the status-change time (which
    // utimes sets too) gives the rewrite away, so the stale pixels are refused.
    for (const f of await readdir(join(data, 'cat'))) {
      const file = join(data, 'cat', f);
      writeFileSync(file, Buffer.alloc(statSync(file).size, 0x20));
      utimesSync(file, when, when);
    }
    await expect(flowFromDirectory(data, { ...options, cache })).rejects.toThrow(`pixel cache ${cache} was built from files that have changed since`);
  });

  it('refuses pixels overwritten in place inside the cache by their CRC-32, naming the image', async () => {
    const cache = join(await tempDir(), 'c.arrow');
    const first = await flowFromDirectory(root, { ...options, cache });
    await epochs(first, [0]);
    await first.close();
    // Row 0's pixels, found in the file and changed in place: the file stays a valid Arrow file.
    const table = tableFromIPC(readFileSync(cache));
    const sample = table.getChild('sample')!.get(0) as number;
    const row = Buffer.from(table.getChild('pixels')!.get(0)!.toArray() as Uint8Array);
    const bytes = readFileSync(cache);
    const at = bytes.indexOf(row);
    expect(at).toBeGreaterThan(0);
    bytes[at + 7] = 255 - bytes[at + 7]!;
    writeFileSync(cache, bytes);
    const again = await flowFromDirectory(root, { ...options, cache });
    try {
      expect(again.cached).toBe(true);
      const path = join(root, again.filenames[sample]!);
      await expect(epochs(again, [0])).rejects.toThrow(`${path}: pixel cache ${cache}: the pixels at byte ${at} fail their CRC-32`);
    } finally {
      await again.close();
    }
  });

  it('refuses a cache whose files were replaced or deleted since it was built (stale pixels), naming it', async () => {
    const data = await tempDir();
    await cp(root, data, { recursive: true });
    const cache = join(await tempDir(), 'c.arrow');
    const first = await flowFromDirectory(data, { ...options, cache });
    await epochs(first, [0]);
    await first.close();
    // One image replaced in place by another (same path, other pixels).
    const replaced = join(data, 'dog', '0.png');
    await cp(join(data, 'cat', '1.png'), replaced);
    utimesSync(replaced, new Date(Date.now() + 5000), new Date(Date.now() + 5000));
    const stale = `pixel cache ${cache} was built from files that have changed since (a size, modification or change time, or inode differs): its pixels are stale; delete it to rebuild`;
    await expect(flowFromDirectory(data, { ...options, cache })).rejects.toThrow(stale);
    await rm(join(data, 'dog', '0.png'));
    await writeImage(replaced, { width: 20, height: 14, seed: 0 });
    await expect(flowFromDirectory(data, { ...options, cache })).rejects.toThrow(stale);
  });

  it('removes and rebuilds a damaged cache (truncated, or overwritten with other bytes), warning with its name', async () => {
    const cache = join(await tempDir(), 'c.arrow');
    const first = await flowFromDirectory(root, { ...options, cache });
    const [e0] = await epochs(first, [0]);
    await first.close();
    const full = statSync(cache).size;
    for (const damage of [
      (f: string) => truncateSync(f, Math.floor(full / 2)),
      (f: string) => truncateSync(f, full - 3),
      (f: string) => writeFileSync(f, 'not arrow at all'),
    ]) {
      damage(cache);
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }) => w.code === 'FEATHERSTACK_CACHE_REBUILT' && warnings.push(w.message);
      process.on('warning', onWarning);
      try {
        const again = await flowFromDirectory(root, { ...options, cache });
        expect(again.cached).toBe(false);
        expect(await epochs(again, [0])).toEqual([e0]);
        await again.close();
        await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        new RegExp(`^pixel cache ${cache} (is truncated|is not an Arrow IPC file).*: removed, to be rebuilt by the next full epoch$`),
      );
      const reused = await flowFromDirectory(root, { ...options, cache });
      expect(reused.cached).toBe(true);
      await reused.close();
    }
  });

  it('is picked up by an existing flow once another flow over the same files has finished it', async () => {
    const cache = join(await tempDir(), 'shared.arrow');
    const writer = await flowFromDirectory(root, { ...options, cache });
    const reader = await flowFromDirectory(root, { ...options, cache, augment: { rescale: 1 / 255 }, shuffle: false });
    try {
      expect(reader.cached).toBe(false);
      await epochs(writer, [0]);
      for await (const _ of reader.epoch(0)) break;
      expect(reader.cached).toBe(true);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it('refuses a cache built for other settings, naming the file', async () => {
    const cache = join(await tempDir(), 'c.arrow');
    const a = await flowFromDirectory(root, { ...options, cache });
    await epochs(a, [0]);
    await a.close();
    // A short message naming what differs, and the one remedy a CLI user has.
    const error = await flowFromDirectory(root, { ...options, cache, targetSize: [8, 8] }).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toBe(
      `pixel cache ${cache} was built for other images or settings: height 12 (this flow: 8), width 16 (this flow: 8): delete it to rebuild it`,
    );
    await expect(flowFromDirectory(root, { ...options, cache, randomCrop: true })).rejects.toThrow('options.cache must be unset with randomCrop');
  });

  it('replays decode failures recorded in the cache under onError: skip, and leaves no cache when the first epoch stops early', async () => {
    const data = await tempDir();
    await cp(root, data, { recursive: true });
    await writeText(join(data, 'cat', 'broken.png'), 'not a png');
    const cache = join(await tempDir(), 'c.arrow');
    const flow = await flowFromDirectory(data, { ...options, cache, onError: 'skip' });
    try {
      const [e0] = await epochs(flow, [0]);
      expect(flow.skippedFiles.map((f) => f.path)).toEqual([join(data, 'cat', 'broken.png')]);
      expect(e0!.flatMap((b) => b.paths)).toHaveLength(14);
      await epochs(flow, [1]);
      expect(flow.cached).toBe(true);
      // Replayed from the cache, named as on the first epoch.
      expect(flow.skippedFiles).toMatchObject([{ epoch: 1, path: join(data, 'cat', 'broken.png'), filename: 'cat/broken.png' }]);
      expect(flow.skippedFiles[0]!.reason).toMatch(/.+/);
    } finally {
      await flow.close();
    }
    const partialDir = await tempDir();
    const stopped = await flowFromDirectory(root, { ...options, cache: join(partialDir, 'c.arrow') });
    for await (const _ of stopped.epoch(0)) break;
    expect(stopped.cached).toBe(false);
    expect(await readdir(partialDir)).toEqual([]);
    await stopped.close();
    await rm(partialDir, { recursive: true });
  });
});

describe('thread plan', () => {
  const probe = (env: Record<string, string | undefined>) => {
    const script = `import('${new URL('../dist/index.js', import.meta.url).href}').then((m) => console.log(JSON.stringify({ uv: process.env.UV_THREADPOOL_SIZE, default: m.DEFAULT_UV_THREADPOOL_SIZE })))`;
    const { UV_THREADPOOL_SIZE: _, ...rest } = process.env;
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...rest, ...env }, encoding: 'utf8' }));
  };

  it('sizes libuv’s pool for one decode per core unless the user chose', () => {
    const auto = probe({});
    expect(Number(auto.uv)).toBe(Math.max(4, availableParallelism() + 2));
    expect(auto.default).toBe(Number(auto.uv));
    expect(probe({ UV_THREADPOOL_SIZE: '7' }).uv).toBe('7');
  });
});
