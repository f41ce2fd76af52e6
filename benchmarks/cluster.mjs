#!/usr/bin/env node
// Distributed extraction on this machine: the job queue's overhead per shard, the throughput of 1
// and 2 worker processes (featherstack worker) against plain extraction in one process, all in one
// run with the rows interleaved over repeats; then a model, from those measured costs, of 1M and
// 100M images on N machines. Debian's redis-server is started on a free port for the run.
//
//   node benchmarks/cluster.mjs [--data DIR] [--size 28] [--color-mode grayscale] [--shard-size 250]
//        [--repeats 3] [--json FILE] [--markdown FILE] [--chart FILE.png]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, machine, median, OUTPUT_OPTIONS, writeSuiteOutputs, SHIPPED_IMAGE_OPTIONS } from './lib.mjs';

const { values } = parseArgs({
  options: {
    ...SHIPPED_IMAGE_OPTIONS,
    'shard-size': { type: 'string', default: '250' },
    repeats: { type: 'string', default: '3' },
    ...OUTPUT_OPTIONS,
  },
});
const data = resolve(values.data);
const size = Number(values.size);
const colorMode = values['color-mode'];
const shardSize = Number(values['shard-size']);
const repeats = Number(values.repeats);
const { cores } = machine();
const cli = join(dirname(fileURLToPath(import.meta.resolve('@featherstack/cli/package.json'))), 'bin', 'featherstack.js');

const { createBaseModel, extractFeatures, featureExtractor } = await import('@featherstack/core');
const { flowFromDirectory } = await import('@featherstack/images');
const { loadTensorFlow } = await import('@featherstack/tensorflow');
const { extractDistributed, parseQueueUrl } = await import('@featherstack/cluster');

const port = await new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => ok(p));
  });
});
const redisDir = mkdtempSync(join(tmpdir(), 'featherstack-bench-redis-'));
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--save', '', '--appendonly', 'no'], {
  stdio: 'ignore',
});
for (let i = 0; i < 100 && spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG'; i++)
  await new Promise((r) => setTimeout(r, 50));
const url = `redis://127.0.0.1:${port}`;

const tf = loadTensorFlow({ intraOpThreads: cores });
const channels = colorMode === 'grayscale' ? 1 : colorMode === 'rgb' ? 3 : 4;
const base = createBaseModel(tf, { inputShape: [size, size, channels], seed: 1 });
const work = mkdtempSync(join(tmpdir(), 'featherstack-bench-cluster-'));
await base.save(`file://${join(work, 'base')}`);
const model = join(work, 'base', 'model.json');
const settings = { imageSize: [size, size], colorMode, batchSize: 256 };

/** Plain extraction in this process: the baseline. */
async function plain() {
  const flow = await flowFromDirectory(data, { targetSize: [size, size], colorMode, batchSize: 256, shuffle: false, augment: { rescale: 1 / 255 } });
  const started = performance.now();
  const { rows } = await extractFeatures(tf, featureExtractor(tf, base), flow, join(work, 'plain.arrow'));
  const seconds = (performance.now() - started) / 1000;
  await flow.close();
  return { rows, seconds };
}

/** `n` worker processes (started, and ready, before the clock starts) and the coordinator here. */
async function queued(n, shard, run) {
  const workers = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const child = spawn(process.execPath, [cli, 'worker', '--queue', url, '--name', `bench-${i}`, '--workers', String(Math.max(1, Math.floor(cores / n)))], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      return new Promise((ok) => child.stderr.on('data', (d) => String(d).includes('waiting for shards') && ok(child)));
    }),
  );
  const out = join(work, `shards-${n}-${shard}-${run}`);
  const started = performance.now();
  const result = await extractDistributed({ connection: parseQueueUrl(url), model, data, out, shardSize: shard, ...settings });
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => new Promise((ok) => w.once('exit', ok) && w.kill('SIGTERM'))));
  rmSync(out, { recursive: true, force: true });
  return { rows: result.rows, shards: result.shards, seconds };
}

const rows = { plain: [], one: [], two: [], oneSmall: [] };
const small = Math.max(10, Math.floor(shardSize / 10));
for (let r = 0; r < repeats; r++) {
  const order = [
    ['plain', () => plain()],
    ['one', () => queued(1, shardSize, r)],
    ['two', () => queued(2, shardSize, r)],
    ['oneSmall', () => queued(1, small, r)],
  ];
  for (const [name, fn] of r % 2 ? order.reverse() : order) {
    const m = await fn();
    rows[name].push(m);
    log(`repeat ${r + 1}: ${name} ${m.rows} images in ${m.seconds.toFixed(2)} s${m.shards ? ` (${m.shards} shards)` : ''}`);
  }
}
redis.kill('SIGTERM');
rmSync(work, { recursive: true, force: true });
rmSync(redisDir, { recursive: true, force: true });

const med = (name) => median(rows[name].map((m) => m.seconds));
const images = rows.plain[0].rows;
const shardsOf = (name) => rows[name][0].shards;
// Overhead per shard: the same images in 10× more shards, on one worker, cost this much more per extra shard.
const overhead = Math.max(0, (med('oneSmall') - med('one')) / (shardsOf('oneSmall') - shardsOf('one')));
const perImage = med('plain') / images;
const model100 = (n, machines) => {
  const shards = Math.ceil(n / shardSize);
  return (Math.ceil(shards / machines) * (shardSize * perImage + overhead)) / 3600;
};
const result = {
  benchmark: 'cluster',
  dataset: data,
  images,
  size,
  colorMode,
  shardSize,
  cores,
  repeats,
  seconds: { plain: med('plain'), oneWorker: med('one'), twoWorkers: med('two'), oneWorkerSmallShards: med('oneSmall') },
  imagesPerSecond: { plain: images / med('plain'), oneWorker: images / med('one'), twoWorkers: images / med('two') },
  ratios: { oneWorkerOverPlain: med('one') / med('plain'), twoWorkersOverPlain: med('two') / med('plain') },
  queueOverheadPerShardSeconds: overhead,
  model: {
    note: `a model from this run's costs (${(perImage * 1000).toFixed(2)} ms per image on ${cores} cores, ${(overhead * 1000).toFixed(0)} ms per shard of ${shardSize}), not a measurement; it assumes machines like this one and that Redis and the shared storage keep up`,
    hours: Object.fromEntries(
      [1e6, 1e8].map((n) => [
        n === 1e6 ? '1M' : '100M',
        Object.fromEntries([1, 10, 100].map((m) => [`${m} machine${m > 1 ? 's' : ''}`, Number(model100(n, m).toFixed(2))])),
      ]),
    ),
  },
};
const fmt = (s) => s.toFixed(2);
const markdown = [
  `Distributed extraction on this ${cores}-core machine: ${images} images at ${size}² ${colorMode}, shards of ${shardSize}, ${repeats} interleaved repeats (medians).`,
  '',
  '| row | seconds | images/s | vs plain |',
  '| --- | --- | --- | --- |',
  `| plain extraction, one process (baseline) | ${fmt(med('plain'))} | ${(images / med('plain')).toFixed(0)} | 1.00× |`,
  `| queue, 1 worker process | ${fmt(med('one'))} | ${(images / med('one')).toFixed(0)} | ${(med('one') / med('plain')).toFixed(2)}× the time |`,
  `| queue, 2 worker processes (sharing the 2 cores) | ${fmt(med('two'))} | ${(images / med('two')).toFixed(0)} | ${(med('two') / med('plain')).toFixed(2)}× the time |`,
  `| queue, 1 worker, shards of ${small} (overhead probe) | ${fmt(med('oneSmall'))} | ${(images / med('oneSmall')).toFixed(0)} | ${(med('oneSmall') / med('plain')).toFixed(2)}× the time |`,
  '',
  `Queue overhead per shard: **${(overhead * 1000).toFixed(0)} ms** (enqueue, lock, progress, atomic put, completion).`,
  '',
  `Model (${result.model.note}):`,
  '',
  '| images | 1 machine | 10 machines | 100 machines |',
  '| --- | --- | --- | --- |',
  ...Object.entries(result.model.hours).map(
    ([n, h]) =>
      `| ${n} | ${Object.values(h)
        .map((x) => `${x} h`)
        .join(' | ')} |`,
  ),
].join('\n');
await writeSuiteOutputs(values, result, markdown, {
  title: `Extraction images/s: one process vs the job queue (${cores} cores, shards of ${shardSize})`,
  unit: 'images/s',
  bars: [
    { label: 'plain, one process', value: images / med('plain') },
    { label: 'queue, 1 worker', value: images / med('one') },
    { label: 'queue, 2 workers', value: images / med('two') },
  ],
});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
