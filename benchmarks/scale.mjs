#!/usr/bin/env node
// Million-image scale: generated datasets of 10 k, 100 k and 1 M small images (28×28 grayscale
// PNGs in 10 class folders, cut from Fashion-MNIST-like patterns: 512 distinct files' bytes,
// repeated under distinct names), and per size, each stage a process of its own (its peak RSS is
// its own): listing the directory, packing it, one shuffled epoch of decoding from the loose files
// and one from the pack, and extracting the seed CNN's features from the pack. Reported: seconds, microseconds and bytes of peak RSS per image, and each
// size's per-image time against the smallest size's.
//
//   node benchmarks/scale.mjs [--sizes 10000,100000,1000000] [--repeats 3] [--dir ~/.cache/featherstack/datasets] [--json F --markdown F --chart F]
//   node benchmarks/scale.mjs --stage list|pack|loose|packed --data DIR   (one stage; one JSON line)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { flowFromData, listDirectory, packDataset } from '@featherstack/images';
import sharp from 'sharp';
import { log, machine, OUTPUT_OPTIONS, stageResult, timedEpoch, writeSuiteOutputs } from './lib.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    dir: { type: 'string', default: join(process.env.FEATHERSTACK_CACHE ?? join(homedir(), '.cache', 'featherstack'), 'datasets') },
    stage: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    data: { type: 'string' },
    ...OUTPUT_OPTIONS,
  },
});

/**
 * A coordinator over `data` in one-image shards (as many shards as images), with no workers: the
 * seconds until its first progress line (listing, queueing every shard, reading their states) and
 * the time each later poll takes beyond its sleep. Debian's redis-server runs on a free port.
 */
async function coordinatorStartup(data) {
  const { buildPixelCacheDistributed, parseQueueUrl } = await import('@featherstack/cluster');
  const port = await new Promise((ok) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const p = server.address().port;
      server.close(() => ok(p));
    });
  });
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', mkdtempSync(join(tmpdir(), 'featherstack-scale-redis-')), '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 100 && spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() !== 'PONG'; i++)
      await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    const progress = [];
    const controller = new AbortController();
    await buildPixelCacheDistributed({
      connection: parseQueueUrl(`redis://127.0.0.1:${port}`),
      data,
      out: mkdtempSync(join(tmpdir(), 'featherstack-scale-cache-')),
      imageSize: [28, 28],
      colorMode: 'grayscale',
      shardSize: 1,
      signal: controller.signal,
      onProgress: () => {
        progress.push((performance.now() - started) / 1000);
        if (progress.length === 3) controller.abort(new Error('measured'));
      },
    }).catch((error) => {
      if (error.message !== 'measured') throw error;
    });
    return { shards: (await listDirectory(data)).paths.length, firstProgressSeconds: progress[0], pollSeconds: (progress[2] - progress[0]) / 2 };
  } finally {
    redis.kill();
  }
}

if (values.stage) {
  const started = performance.now();
  if (values.stage === 'coordinator') {
    const r = await coordinatorStartup(values.data);
    process.stdout.write(`${JSON.stringify({ ...r, peakRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
    process.exit(0);
  }
  let r;
  if (values.stage === 'list' || values.stage === 'pack') {
    const images =
      values.stage === 'list'
        ? (await listDirectory(values.data)).paths.length
        : (await packDataset(values.data, `${values.data}.pack`, { overwrite: true, shardBytes: 64 * 2 ** 20 })).manifest.samples;
    r = stageResult(images, started);
  } else if (values.stage === 'extract') {
    // The seed's CNN (untrained: the cost is the same) extracting features from the pack, in file order.
    const { createBaseModel, extractFeatures, featureExtractor } = await import('@featherstack/core');
    const { loadTensorFlow } = await import('@featherstack/tensorflow');
    const tf = loadTensorFlow();
    const base = createBaseModel(tf, { inputShape: [28, 28, 1], seed: 1 });
    const flow = await flowFromData(`${values.data}.pack`, {
      targetSize: [28, 28],
      colorMode: 'grayscale',
      batchSize: 256,
      seed: 1,
      shuffle: false,
      augment: { rescale: 1 / 255 },
    });
    const out = mkdtempSync(join(tmpdir(), 'featherstack-scale-features-'));
    try {
      const { rows } = await extractFeatures(tf, featureExtractor(tf, base), flow, join(out, 'features.arrow'));
      r = stageResult(rows, started);
    } finally {
      await flow.close();
      rmSync(out, { recursive: true, force: true });
    }
  } else {
    const source = values.stage === 'packed' ? `${values.data}.pack` : values.data;
    r = await timedEpoch(
      await flowFromData(source, { targetSize: [28, 28], colorMode: 'grayscale', batchSize: 256, seed: 1, shuffle: true, dtype: 'uint8' }),
      started,
    );
  }
  process.stdout.write(`${JSON.stringify(r)}\n`);
  process.exit(0);
}

/** A dataset of `n` 28×28 grayscale PNGs in 10 class folders (made once; a marker says it is complete). */
async function dataset(n) {
  const dir = join(values.dir, `scale-${n}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  log(`generating ${n} images in ${dir} (once)`);
  const variants = [];
  for (let v = 0; v < 512; v++) {
    const pixels = Buffer.alloc(28 * 28);
    for (let i = 0; i < pixels.length; i++) pixels[i] = ((i % 28) * (v % 7) + Math.floor(i / 28) * (v % 11) + v * 13 + ((i * v) % 17)) % 256;
    variants.push(
      await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toBuffer(),
    );
  }
  for (let c = 0; c < 10; c++) mkdirSync(join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `class${i % 10}`, `${String(i).padStart(7, '0')}.png`), variants[i % 512]);
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}

const sizes = values.sizes.split(',').map(Number);
const repeats = Number(values.repeats);
const stages = ['list', 'pack', 'loose', 'packed', 'extract'];
/** Epochs are repeated and interleaved across sizes (this machine's speed drifts over minutes); the others run once a size. */
const repeated = new Set(['loose', 'packed']);
const results = Object.fromEntries(sizes.map((n) => [n, Object.fromEntries(stages.map((stage) => [stage, []]))]));
const runStage = (n, stage) => {
  const child = spawnSync(process.execPath, [import.meta.filename, '--stage', stage, '--data', join(values.dir, `scale-${n}`)], {
    encoding: 'utf8',
    maxBuffer: 2 ** 26,
  });
  if (child.status !== 0) throw new Error(`scale.mjs --stage ${stage} (${n}) failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop());
  if (r.images !== n) throw new Error(`scale.mjs --stage ${stage} saw ${r.images} of ${n} images`);
  results[n][stage].push(r);
  log(`${n} ${stage}: ${r.seconds.toFixed(1)} s, ${((r.seconds / n) * 1e6).toFixed(1)} µs/image, peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
};
for (const n of sizes) {
  await dataset(n);
  runStage(n, 'list');
  runStage(n, 'pack');
}
for (let r = 0; r < repeats; r++) for (const stage of repeated) for (const n of sizes) runStage(n, stage);
for (const n of sizes) runStage(n, 'extract');
const packBytes = Object.fromEntries(
  sizes.map((n) => {
    const dir = join(values.dir, `scale-${n}.pack`);
    return [n, readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0)];
  }),
);
/** The run with the median time of a stage at a size. */
const medianRun = (n, stage) => {
  const runs = [...results[n][stage]].sort((a, b) => a.seconds - b.seconds);
  return runs[(runs.length - 1) >> 1];
};
// The coordinator at 100,000 shards (the largest size up to that), queue and poll only.
const coordinatorSize = Math.max(...sizes.filter((n) => n <= 100000));
let coordinator = null;
if (Number.isFinite(coordinatorSize)) {
  const child = spawnSync(process.execPath, [import.meta.filename, '--stage', 'coordinator', '--data', join(values.dir, `scale-${coordinatorSize}`)], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`scale.mjs --stage coordinator failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  coordinator = JSON.parse(child.stdout.trim().split('\n').pop());
  log(
    `coordinator, ${coordinator.shards} shards: first progress after ${coordinator.firstProgressSeconds.toFixed(1)} s, a poll every ${coordinator.pollSeconds.toFixed(2)} s`,
  );
}
const base = sizes[0];
const rows = sizes.flatMap((n) =>
  stages.map((stage) => {
    const r = medianRun(n, stage);
    return {
      images: n,
      stage,
      seconds: r.seconds,
      microsecondsPerImage: (r.seconds / n) * 1e6,
      runs: results[n][stage].length,
      perImageVsSmallest: r.seconds / n / (medianRun(base, stage).seconds / base),
      peakRssMiB: r.peakRssBytes / 2 ** 20,
      rssBytesPerImage: r.peakRssBytes / n,
      userSeconds: r.userSeconds,
      systemSeconds: r.systemSeconds,
    };
  }),
);
const names = {
  list: 'list the directory',
  pack: 'pack (original bytes)',
  loose: 'one epoch from loose files',
  packed: 'one epoch from the pack',
  extract: "feature extraction from the pack (the seed's CNN)",
};
const result = { suite: 'scale', machine: machine(), sizes, repeats, rows, coordinator, packBytes };
const markdown = [
  `Generated datasets of 28×28 grayscale PNGs in 10 class folders; each stage a process of its own. Epochs (shuffled, decoded to uint8 by every core, batch 256): ${repeats} repeats interleaved across the sizes, medians; listing, packing and extraction once a size.`,
  '',
  '| images | stage | runs | seconds (median) | µs / image | ÷ smallest size | peak RSS | RSS bytes / image | CPU user / sys |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.images.toLocaleString('en')} | ${names[r.stage]} | ${r.runs} | ${r.seconds.toFixed(1)} | ${r.microsecondsPerImage.toFixed(1)} | ${r.perImageVsSmallest.toFixed(2)}× | ${r.peakRssMiB.toFixed(0)} MiB | ${r.rssBytesPerImage.toFixed(0)} | ${r.userSeconds.toFixed(0)} / ${r.systemSeconds.toFixed(0)} s |`,
  ),
  '',
  ...(coordinator
    ? [
        `The coordinator over ${coordinator.shards.toLocaleString('en')} one-image shards (no workers; Redis on this machine): its first progress line after ${coordinator.firstProgressSeconds.toFixed(1)} s (listing, queueing every shard in bulk, reading every state), then a poll every ${coordinator.pollSeconds.toFixed(1)} s (one range read per state; the sleep between polls grows with the shard count, to 5 s at 100,000).`,
        '',
      ]
    : []),
].join('\n');
await writeSuiteOutputs(values, result, markdown, {
  title: 'Microseconds per image by dataset size',
  unit: 'µs/image',
  bars: rows.map((r) => ({ label: `${r.images} ${names[r.stage]}`, value: r.microsecondsPerImage })),
});
process.stderr.write(markdown);
process.stdout.write(`${JSON.stringify(result)}\n`);
