import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shardFileName as shardName } from '@featherstack/common';
import { createBaseModel, extractFeatures, featureExtractor, loadBaseModel, recordCut } from '@featherstack/core';
import { SHIPPED_VAL } from '@featherstack/fixtures';
import { readFeatureFile, readFeatureFiles } from '@featherstack/head';
import { flowFromData, flowFromDirectory, packDataset } from '@featherstack/images';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { tableFromIPC } from 'apache-arrow';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPixelCacheDistributed,
  checkReachable,
  extractDistributed,
  packDistributed,
  parseQueueUrl,
  queueStatus,
  queueUrlFromConfig,
  verifyShardSet,
} from '../dist/index.js';
import { type RedisServer, startRedis } from './redis.js';

// Distributed extraction on a real Redis (Debian's redis-server on a free port) with worker processes.
const tf = loadTensorFlow({ intraOpThreads: 1, interOpThreads: 1 });
// No batch size: each worker sizes its batches from the model it loads (the reference uses 64: rows
// do not depend on the batch).
const settings = { imageSize: [28, 28] as [number, number], colorMode: 'grayscale' as const, shardSize: 100 };
let redis: RedisServer;
let model: string;
let reference: Awaited<ReturnType<typeof readFeatureFile>>;
let referencePath: string;
const workers: ChildProcess[] = [];

function startWorkerProcess(name: string, lockMs = 4000, url = redis.url): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'worker-process.mjs'), url, name, String(lockMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  workers.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`worker ${name} exited with ${code} before it was ready`)));
  });
}

async function stopWorkers(): Promise<void> {
  await Promise.all(
    workers.splice(0).map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          w.once('exit', () => resolve());
          w.kill('SIGTERM');
        }),
    ),
  );
}

function extract(out: string, extra: Partial<Parameters<typeof extractDistributed>[0]> = {}) {
  return extractDistributed({ connection: parseQueueUrl(redis.url), model, data: SHIPPED_VAL, out, ...settings, ...extra });
}

/** The features of `set`'s rows, keyed by path: equal to the single-process extraction's. */
function expectEqualToReference(set: Awaited<ReturnType<typeof readFeatureFile>>) {
  expect(set.rows).toBe(reference.rows);
  expect(set.paths).toEqual(reference.paths);
  expect(Array.from(set.labels)).toEqual(Array.from(reference.labels));
  let worst = 0;
  for (let i = 0; i < set.features.length; i++) worst = Math.max(worst, Math.abs(set.features[i]! - reference.features[i]!));
  expect(worst).toBeLessThan(1e-5);
}

beforeAll(async () => {
  redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'fs-cluster-'));
  const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8], dense: [16], seed: 5 });
  await base.save(`file://${join(dir, 'base')}`);
  model = join(dir, 'base', 'model.json');
  // The reference: the same base and settings in one process.
  const flow = await flowFromDirectory(SHIPPED_VAL, {
    targetSize: settings.imageSize,
    colorMode: 'grayscale',
    batchSize: 64,
    shuffle: false,
    augment: { rescale: 1 / 255 },
    workers: 1,
  });
  await extractFeatures(tf, featureExtractor(tf, base), flow, join(dir, 'reference.arrow'), { replicas: 1 });
  await flow.close();
  referencePath = join(dir, 'reference.arrow');
  reference = await readFeatureFile(referencePath);
});

afterAll(async () => {
  await stopWorkers();
  await redis?.stop();
});

describe('distributed extraction on BullMQ and Redis', () => {
  it('3 worker processes extract the shipped subset through the queue: the shard set equals a single-process extraction row for row', async () => {
    await Promise.all(['w1', 'w2', 'w3'].map((n) => startWorkerProcess(n)));
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-'));
    const progress: number[] = [];
    let during: ReturnType<typeof queueStatus> | null = null;
    const result = await extract(out, {
      onProgress: (p) => {
        progress.push(p.done);
        // While shards are active, queue status names the worker holding each.
        if (!during && p.active > 0) during = queueStatus(parseQueueUrl(redis.url));
      },
    });
    const snapshot = await during!;
    expect(snapshot.active.length).toBeGreaterThan(0);
    for (const a of snapshot.active) expect(['w1', 'w2', 'w3', null]).toContain(a.worker);
    expect(snapshot.active.some((a) => a.worker !== null)).toBe(true);
    expect(result).toMatchObject({ shards: 5, rows: 500, alreadyDone: 0 });
    expect(readdirSync(out).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `shard-${String(i).padStart(6, '0')}.arrow`));
    expectEqualToReference(await readFeatureFiles(out));
    expect(progress.at(-1)).toBe(5);
    // Every shard was done by one of the three processes; the queue shows them done.
    const status = await queueStatus(parseQueueUrl(redis.url));
    expect(status.counts.completed).toBeGreaterThanOrEqual(5);
    expect(status.counts.failed).toBe(0);
    // Running the coordinator again re-attaches to the finished set instead of enqueueing it twice.
    const again = await extract(out);
    expect(again).toMatchObject({ set: result.set, alreadyDone: 5 });
  });

  it('carries the cut and the preprocess mode to the workers: a set cut at a named layer with pooling equals one process doing the same', async () => {
    const loaded = await loadBaseModel(tf, model);
    const layer = loaded.layers.find((l) => l.getClassName() === 'Conv2D')!.name;
    const dir = await mkdtemp(join(tmpdir(), 'fs-shards-cut-'));
    const flow = await flowFromDirectory(SHIPPED_VAL, {
      targetSize: settings.imageSize,
      colorMode: 'grayscale',
      batchSize: 64,
      shuffle: false,
      augment: { rescale: 1, preprocess: 'tf' },
      workers: 1,
    });
    await extractFeatures(tf, featureExtractor(tf, loaded, layer, 'max'), flow, join(dir, 'reference.arrow'), { featureLayer: layer, pooling: 'max' });
    await flow.close();
    loaded.dispose();
    const result = await extract(join(dir, 'shards'), { featureLayer: layer, pooling: 'max', preprocess: 'tf' });
    expect(result).toMatchObject({ shards: 5, rows: 500 });
    const [set, single] = [await readFeatureFiles(join(dir, 'shards')), await readFeatureFile(join(dir, 'reference.arrow'))];
    expect(set.dimension).toBe(single.dimension);
    expect(set.paths).toEqual(single.paths);
    let worst = 0;
    for (let i = 0; i < set.features.length; i++) worst = Math.max(worst, Math.abs(set.features[i]! - single.features[i]!));
    expect(worst).toBeLessThan(1e-5);
    const table = tableFromIPC(readFileSync(join(dir, 'shards', 'shard-000000.arrow')));
    expect([table.schema.metadata.get('featherstack.feature_layer'), table.schema.metadata.get('featherstack.pooling')]).toEqual([layer, 'max']);
    expect(table.schema.metadata.get('featherstack.preprocess')).toBe('tf');
  });

  it('a base with the cut train-base recorded is cut there on the workers, layer and pooling, as extract cuts it', async () => {
    const loaded = await loadBaseModel(tf, model);
    const layer = loaded.layers.find((l) => l.getClassName() === 'Conv2D')!.name;
    recordCut(loaded, { featureLayer: layer, pooling: 'avg' });
    const dir = await mkdtemp(join(tmpdir(), 'fs-shards-recorded-'));
    await loaded.save(`file://${join(dir, 'base')}`);
    loaded.dispose();
    const result = await extract(join(dir, 'shards'), { model: join(dir, 'base', 'model.json') });
    expect(result).toMatchObject({ shards: 5, rows: 500 });
    const table = tableFromIPC(readFileSync(join(dir, 'shards', 'shard-000000.arrow')));
    expect([table.schema.metadata.get('featherstack.feature_layer'), table.schema.metadata.get('featherstack.pooling')]).toEqual([layer, 'avg']);
    expect((await readFeatureFiles(join(dir, 'shards'))).dimension).toBe(8); // the conv's 8 filters, averaged
  });

  it('a worker killed with SIGKILL mid-shard: its shard is taken over after the lock expires, and the set is identical, nothing duplicated', async () => {
    await stopWorkers();
    const victim = await startWorkerProcess('victim', 3000);
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-kill-'));
    let killed = false;
    let rescuer: Promise<ChildProcess> | null = null;
    const result = await extract(out, {
      onProgress: (p) => {
        // Once the victim holds a shard (its lock taken; its first shard also loads the model, so this
        // is seen well before the shard ends), kill it without warning and start a rescuer. Waiting
        // for rows as well missed the window now and then: a 100-row shard can finish between polls.
        if (!killed && p.active > 0) {
          killed = true;
          victim.kill('SIGKILL');
          rescuer = startWorkerProcess('rescuer', 3000);
        }
      },
    });
    expect(killed).toBe(true);
    await rescuer;
    expect(result).toMatchObject({ shards: 5, rows: 500 });
    expectEqualToReference(await readFeatureFiles(out));
  });

  it('Redis restarted mid-run with persistence on: workers and coordinator reconnect and the set completes', async () => {
    await stopWorkers();
    await Promise.all(['r1', 'r2'].map((n) => startWorkerProcess(n)));
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-restart-'));
    let restarted: Promise<void> | null = null;
    const result = await extract(out, {
      onProgress: (p) => {
        if (!restarted && p.done >= 1) restarted = redis.restart(1500);
      },
    });
    await restarted;
    expect(restarted).not.toBeNull();
    expect(result).toMatchObject({ shards: 5, rows: 500 });
    expectEqualToReference(await readFeatureFiles(out));
  });

  it('a corrupt, foreign or missing shard file is refused by name, by the coordinator and by the head', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-bad-'));
    const result = await extract(out);
    const listing = reference.paths;
    const expected = { set: result.set, count: 5, paths: listing, labels: reference.labels };
    await verifyShardSet(out, expected);
    // Rows relabelled (what a forged job could write in place of a finished shard): refused by row.
    const relabelled = Int32Array.from(reference.labels, (l, i) => (i === 250 ? (l + 1) % 10 : l));
    await expect(verifyShardSet(out, { ...expected, labels: relabelled })).rejects.toThrow(
      `shard ${join(out, 'shard-000002.arrow')}: row 250 (${listing[250]}) is labelled ${reference.labels[250]}, the listing says ${relabelled[250]}`,
    );
    const third = join(out, 'shard-000002.arrow');
    writeFileSync(third, 'not arrow at all');
    await expect(verifyShardSet(out, expected)).rejects.toThrow(`shard ${third} is not a readable feature file`);
    await expect(readFeatureFiles(out)).rejects.toThrow(/shard-000002\.arrow: is not an Arrow IPC file/);
    // A feature file from elsewhere (the single-process extraction) put in the set is not part of it.
    writeFileSync(third, readFileSync(referencePath));
    await expect(verifyShardSet(out, expected)).rejects.toThrow(`shard ${third} is not a shard of extraction ${result.set}`);
    await expect(readFeatureFiles(out)).rejects.toThrow(/shard-000002\.arrow is not a shard, but .*shard-000000\.arrow is/);
  });

  it('a damaged finished shard: the coordinator refuses naming it and --repair; with repair it is extracted anew, the damaged file kept', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-repair-'));
    const first = await extract(out);
    expect(first.repaired).toEqual([]);
    const third = join(out, 'shard-000002.arrow');
    const fifth = join(out, 'shard-000004.arrow');
    writeFileSync(third, 'not arrow at all');
    writeFileSync(fifth, readFileSync(referencePath)); // a feature file, but not this set's shard
    await expect(extract(out)).rejects.toThrow(
      new RegExp(
        `shard ${third} is not a readable feature file .*\\(and 1 more damaged shard\\); run again with --repair \\(options\\.repair\\) to extract them anew`,
      ),
    );
    const lines: string[] = [];
    const repaired = await extract(out, { repair: true, log: (l) => lines.push(l) });
    expect(repaired).toMatchObject({ set: first.set, shards: 5, rows: 500, repaired: [2, 4] });
    expect(lines.some((l) => l.startsWith('repairing 2 damaged shards (2, 4): '))).toBe(true);
    // Nothing is lost: each damaged file is kept beside the set, which the head's reader ignores.
    expect(readFileSync(`${third}.damaged`, 'utf8')).toBe('not arrow at all');
    expect(readFileSync(`${fifth}.damaged`).equals(readFileSync(referencePath))).toBe(true);
    expectEqualToReference(await readFeatureFiles(out));
    expect((await extract(out)).repaired).toEqual([]);
  });

  it('workers build a sharded pixel cache that a flow reads as one cache (same pixels as decoding), and a stale shard is refused by name', async () => {
    await stopWorkers();
    await Promise.all(['p1', 'p2'].map((n) => startWorkerProcess(n)));
    const data = await mkdtemp(join(tmpdir(), 'fs-pixels-data-'));
    cpSync(SHIPPED_VAL, data, { recursive: true });
    // One file that cannot be decoded: recorded in the cache, and reported, not passed over in silence.
    const broken = join(data, '3_dress', 'zz-broken.png');
    writeFileSync(broken, 'not a png');
    const out = await mkdtemp(join(tmpdir(), 'fs-pixels-'));
    const lines: string[] = [];
    const result = await buildPixelCacheDistributed({ connection: parseQueueUrl(redis.url), data, out, ...settings, log: (line) => lines.push(line) });
    expect(result).toMatchObject({ shards: 6, rows: 501 });
    expect(result.undecodable).toEqual([{ path: broken, reason: expect.stringMatching(/.+/) }]);
    expect(lines.some((l) => l.startsWith(`1 image could not be decoded; the cache records it`) && l.includes(broken))).toBe(true);
    expect(readdirSync(out).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `pixels-${String(i).padStart(6, '0')}.arrow`));
    const options = {
      targetSize: settings.imageSize,
      colorMode: 'grayscale' as const,
      batchSize: 100,
      shuffle: false,
      workers: 1,
      augment: { rescale: 1 / 255 },
      onError: 'skip' as const,
    };
    const cached = await flowFromDirectory(data, { ...options, cache: out });
    const decoded = await flowFromDirectory(data, options);
    try {
      expect(cached.cached).toBe(true);
      const a: number[] = [];
      const b: number[] = [];
      for await (const batch of cached.epoch(0)) a.push(...batch.images);
      for await (const batch of decoded.epoch(0)) b.push(...batch.images);
      expect(a.length).toBe(500 * 28 * 28);
      expect(a).toEqual(b);
    } finally {
      await Promise.all([cached.close(), decoded.close()]);
    }
    // Its shards hold raw pixels: a flow that asks another format is refused, naming the option and the directory.
    await expect(flowFromDirectory(data, { ...options, cache: out, cacheFormat: 'png' })).rejects.toThrow(
      /options\.cacheFormat must be raw \(or unset\) for the sharded pixel cache directory .*, whose shards hold raw pixels, received "png"/,
    );
    const raw = await flowFromDirectory(data, { ...options, cache: out, cacheFormat: 'raw' });
    expect(raw.cached).toBe(true);
    await raw.close();
    // A damaged shard of the shared directory is refused by name and left where it is (a reader
    // of a shared cache removes nothing).
    const shard3 = join(out, 'pixels-000003.arrow');
    const intact = readFileSync(shard3);
    writeFileSync(shard3, intact.subarray(0, intact.length - 1000));
    await expect(flowFromDirectory(data, { ...options, cache: out })).rejects.toThrow(/pixel cache shard .*pixels-000003\.arrow is damaged/);
    expect(existsSync(shard3)).toBe(true);
    writeFileSync(shard3, intact);
    // An image replaced since: the shard holding it is stale, and named.
    const victim = join(data, '3_dress', readdirSync(join(data, '3_dress')).sort()[0]!);
    utimesSync(victim, new Date(Date.now() + 10_000), new Date(Date.now() + 10_000));
    await expect(flowFromDirectory(data, { ...options, cache: out })).rejects.toThrow(
      /pixel cache .*pixels-000001\.arrow was built from files that have changed since/,
    );
  });

  it('workers pack a dataset shard by shard: the pack is byte for byte the one packDataset writes, reads as it, and a shard not the planned one is refused', async () => {
    await stopWorkers();
    await Promise.all(['k1', 'k2'].map((n) => startWorkerProcess(n)));
    const out = await mkdtemp(join(tmpdir(), 'fs-pack-queue-'));
    const local = await mkdtemp(join(tmpdir(), 'fs-pack-local-'));
    const shardBytes = 64 * 1024;
    const progress: number[] = [];
    const result = await packDistributed({
      connection: parseQueueUrl(redis.url),
      data: SHIPPED_VAL,
      out,
      shardBytes,
      seed: 4,
      overwrite: true,
      onProgress: (p) => progress.push(p.done),
    });
    const reference = await packDataset(SHIPPED_VAL, local, { shardBytes, seed: 4, overwrite: true });
    expect(result.manifest.shards.length).toBeGreaterThan(2);
    expect(progress.at(-1)).toBe(result.manifest.shards.length);
    // The same shards (the same bytes: boundaries by the files' sizes, as packDataset draws them), index and manifest.
    expect(result.manifest).toEqual({ ...reference.manifest });
    for (const s of reference.manifest.shards) expect(readFileSync(join(out, s.file)).equals(readFileSync(join(local, s.file)))).toBe(true);
    expect(readFileSync(join(out, 'index.arrow')).equals(readFileSync(join(local, 'index.arrow')))).toBe(true);
    // A flow reads it as it reads the directory.
    const options = { targetSize: [28, 28] as [number, number], colorMode: 'grayscale' as const, batchSize: 500, shuffle: false, workers: 1 };
    const packFlow = await flowFromData(out, options);
    const dirFlow = await flowFromDirectory(SHIPPED_VAL, options);
    try {
      const a = (await packFlow.epoch(0).next()).value!;
      const b = (await dirFlow.epoch(0).next()).value!;
      // A pack yields its stored order: the same images, each with the same pixels.
      const px = 28 * 28;
      const byPath = (batch: typeof a) =>
        new Map(batch.paths.map((p, i) => [p.split('/').slice(-2).join('/'), Array.from(batch.images.subarray(i * px, (i + 1) * px))]));
      const [fromPackRows, fromDirRows] = [byPath(a), byPath(b)];
      expect(fromPackRows.size).toBe(500);
      for (const [path, pixels] of fromDirRows) expect(fromPackRows.get(path), path).toEqual(pixels);
    } finally {
      await Promise.all([packFlow.close(), dirFlow.close()]);
    }
    // Re-attached after a shard was swapped for another: the coordinator reads every shard back and refuses it by name.
    cpSync(join(out, 'shard-00000.arrow'), join(out, 'shard-00001.arrow'));
    await expect(packDistributed({ connection: parseQueueUrl(redis.url), data: SHIPPED_VAL, out, shardBytes, seed: 4 })).rejects.toThrow(
      /pack shard .*shard-00001\.arrow does not hold the rows planned for it/,
    );
    // Another set into a directory holding a pack is refused unless overwrite says so.
    await expect(packDistributed({ connection: parseQueueUrl(redis.url), data: SHIPPED_VAL, out, shardBytes, seed: 5 })).rejects.toThrow(
      /is not empty \(pass overwrite/,
    );
  });

  /**
   * An extraction through a Redis without persistence that restarts empty at the first progress
   * report; `then` runs once it is back. Its result, the coordinator's log lines, and the features.
   */
  async function extractThroughRestart(volatile: RedisServer, then: () => Promise<unknown> = async () => {}) {
    const out = await mkdtemp(join(tmpdir(), 'fs-shards-volatile-'));
    const lines: string[] = [];
    let restarted: Promise<unknown> | null = null;
    const result = await extractDistributed({
      connection: parseQueueUrl(volatile.url),
      model,
      data: SHIPPED_VAL,
      out,
      ...settings,
      log: (line) => lines.push(line),
      onProgress: () => {
        restarted ??= volatile.restart(300).then(then);
      },
    });
    await restarted;
    return { result, lines, features: await readFeatureFiles(out) };
  }

  it('Redis restarted without persistence while shards wait: the coordinator queues the lost shards again and the set completes', async () => {
    await stopWorkers();
    const volatile = await startRedis({ persist: false });
    try {
      // The shards are queued with no worker yet; Redis then restarts empty, and only then do workers come.
      const { result, lines, features } = await extractThroughRestart(volatile, () =>
        Promise.all(['v1', 'v2'].map((n) => startWorkerProcess(n, 4000, volatile.url))),
      );
      expect(lines.some((l) => /^5 shard jobs are gone from Redis \(restarted without persistence\?\): queued again$/.test(l))).toBe(true);
      expect(result).toMatchObject({ shards: 5, rows: 500 });
      expectEqualToReference(features);
    } finally {
      await stopWorkers();
      await volatile.stop();
    }
  });

  it('Redis restarted without persistence while workers hold shards: the workers live on and the set completes', async () => {
    await stopWorkers();
    const volatile = await startRedis({ persist: false });
    try {
      const held = await Promise.all(['h1', 'h2'].map((n) => startWorkerProcess(n, 4000, volatile.url)));
      // The first progress report comes from a worker mid-shard: Redis restarts empty under it.
      const { result, lines, features } = await extractThroughRestart(volatile);
      expect(lines.some((l) => /shard jobs? (is|are) gone from Redis \(restarted without persistence\?\): queued again$/.test(l))).toBe(true);
      // Neither worker died of the lost job's rejection ("Missing key for job …").
      for (const w of held) expect([w.exitCode, w.signalCode]).toEqual([null, null]);
      expect(result).toMatchObject({ shards: 5, rows: 500 });
      expectEqualToReference(features);
    } finally {
      await stopWorkers();
      await volatile.stop();
    }
  });

  it('forged jobs: a worker reads and writes nothing outside its roots, and queue status shows them escaped', async () => {
    await stopWorkers();
    await startWorkerProcess('guard');
    const queue = new Queue('featherstack-extract', { connection: parseQueueUrl(redis.url).options });
    const victim = await mkdtemp(join(tmpdir(), 'fs-forged-'));
    const forged = {
      kind: 'pixels',
      set: '00000000000000aa',
      model: null,
      image: { imageSize: [28, 28], colorMode: 'grayscale', rescale: 1, preprocess: 'none', batchSize: null },
      pack: null,
      root: '/etc',
      classNames: ['x'],
      paths: ['hostname'],
      labels: [0],
      shard: { index: 0, count: 1, start: 0, end: 1 },
      output: join(victim, 'out'),
    };
    const failure = async (id: string, data: unknown) => {
      const job = await queue.add('shard', data as never, { jobId: id, attempts: 1 });
      for (let i = 0; i < 200 && (await queue.getJobState(id)) !== 'failed'; i++) await new Promise((r) => setTimeout(r, 50));
      return (await Job.fromId(queue, job.id!))!.failedReason;
    };
    try {
      // An image outside every dataset, its pixels into a directory of the attacker's choosing.
      expect(await failure('forged-read', forged)).toMatch(/^job refused: root "\/etc" is outside this worker's --root/);
      // A path through shard.index.
      expect(await failure('forged-index', { ...forged, root: SHIPPED_VAL, shard: { ...forged.shard, index: 'x/../../../escaped' } })).toBe(
        'job refused: shard.index must be an integer from 0 to 0',
      );
      // A file's first characters through model.path's parse error.
      const read = await failure('forged-model', {
        ...forged,
        kind: 'features',
        root: SHIPPED_VAL,
        model: { path: '/etc/passwd', sha256: 'a'.repeat(64), featureLayer: null, pooling: 'none' },
      });
      expect(read).toMatch(/^job refused: model\.path "\/etc\/passwd" is outside/);
      expect(read).not.toContain('root:');
      expect(readdirSync(victim)).toEqual([]);
      // A finished shard replaced by a forged job's relabelled rows: the job runs (its fields are
      // all in bounds), but the file in place is kept.
      const finished = join(victim, 'set');
      mkdirSync(finished);
      writeFileSync(join(finished, shardName(0, 'pixels')), 'the finished shard');
      const [klass] = readdirSync(SHIPPED_VAL);
      const [image] = readdirSync(join(SHIPPED_VAL, klass!));
      const relabel = await queue.add(
        'shard',
        { ...forged, root: SHIPPED_VAL, classNames: ['a', 'b'], paths: [`${klass}/${image}`], labels: [1], output: finished } as never,
        {
          jobId: 'forged-replace',
          attempts: 1,
        },
      );
      for (let i = 0; i < 200 && !['completed', 'failed'].includes(await queue.getJobState(relabel.id!)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await queue.getJobState(relabel.id!)).toBe('completed');
      expect(readFileSync(join(finished, shardName(0, 'pixels')), 'utf8')).toBe('the finished shard');
      expect(readdirSync(finished)).toEqual([shardName(0, 'pixels')]);
      // Raw terminal escapes, and a job left without data: queue status shows both, escaped.
      expect(await failure('forged-escape', { ...forged, set: '\u001b[2J\u001b]0;owned\u0007' })).toBe('job refused: set holds control characters');
      const redisClient = new Redis(parseQueueUrl(redis.url).options);
      await redisClient.hdel('bull:featherstack-extract:forged-read', 'data');
      redisClient.disconnect();
      const status = await queueStatus(parseQueueUrl(redis.url));
      expect(status.failed.find((f) => f.set.startsWith('\\u001b[2J'))).toMatchObject({ set: '\\u001b[2J\\u001b]0;owned\\u0007', shard: 0 });
      expect(status.failed.find((f) => f.reason.includes('root "/etc"'))).toMatchObject({ set: '?', shard: -1 });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('an unreachable Redis is one clear error naming the address, and a bad URL names the flag', async () => {
    await expect(checkReachable(parseQueueUrl('redis://:secret@127.0.0.1:1'), 1000)).rejects.toThrow(
      /cannot reach the job queue's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/,
    );
    expect(() => parseQueueUrl('http://x', '--queue')).toThrow("--queue must be a redis:// or rediss:// URL, received 'http://x'");
    expect(parseQueueUrl('rediss://user:p%40ss@cache.example:6380/2').options).toMatchObject({
      host: 'cache.example',
      port: 6380,
      db: 2,
      username: 'user',
      password: 'p@ss',
      tls: {},
    });
    // From a config file, naming the file when the key is missing.
    const dir = await mkdtemp(join(tmpdir(), 'fs-queue-config-'));
    writeFileSync(join(dir, 'queue.yaml'), `queue: ${redis.url}\n`);
    expect(await queueUrlFromConfig(join(dir, 'queue.yaml'))).toBe(redis.url);
    writeFileSync(join(dir, 'empty.json'), '{}');
    await expect(queueUrlFromConfig(join(dir, 'empty.json'))).rejects.toThrow(`config ${join(dir, 'empty.json')}: needs a 'queue' key`);
  });
});
