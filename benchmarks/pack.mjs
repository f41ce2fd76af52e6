#!/usr/bin/env node
// Loose files against packs: one shuffled epoch of decoding at 224² RGB (uint8, no augmentation,
// every core decoding) from the photo directory, from a pack of the original bytes, from a pack
// re-encoded as JPEG q90 at 256 px on the longer side (FFCV's published setting: 17 KB an image),
// from WebDataset tars of the original bytes, and from the pixel cache in each of its formats (raw, png,
// jpeg:90: written by a first epoch over the loose files, then read). Each epoch runs in a process of its own (its peak RSS is its own), cold — the page cache
// dropped first through /proc/sys/vm/drop_caches where this machine allows it — then warm.
// Sources are interleaved within every repeat; medians are reported, and ratios against loose files.
//
//   node benchmarks/pack.mjs --data <class folders> [--repeats 3] [--packs DIR] [--json F --markdown F --chart F]
//   node benchmarks/pack.mjs --row <dir or pack> [--cache F --cache-format raw|png|jpeg:Q]   (one epoch; prints one JSON line)
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { flowFromData, listDirectory, packDataset } from '@featherstack/images';
import { log, machine, median, OUTPUT_OPTIONS, timedEpoch, writeSuiteOutputs } from './lib.mjs';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    row: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    packs: { type: 'string', default: '/tmp/featherstack-bench-packs' },
    size: { type: 'string', default: '224' },
    cache: { type: 'string' },
    'cache-format': { type: 'string', default: 'raw' },
    ...OUTPUT_OPTIONS,
  },
});
const size = Number(values.size);

if (values.row) {
  const started = performance.now();
  const cache = values.cache ? { cache: values.cache, cacheFormat: values['cache-format'] } : {};
  const flow = await flowFromData(values.row, { targetSize: [size, size], batchSize: 64, seed: 1, shuffle: true, dtype: 'uint8', ...cache });
  const r = await timedEpoch(flow, started);
  const plan = flow.cachePlan?.state ?? null;
  process.stdout.write(`${JSON.stringify({ ...r, cachePlan: plan, imagesPerSecond: r.images / r.seconds, peakRssMiB: r.peakRssBytes / 2 ** 20 })}\n`);
  process.exit(0);
}

if (!values.data) throw new Error('pack.mjs: --data <directory of class folders> is required');
const data = resolve(values.data);
const repeats = Number(values.repeats);

/** Drops the page cache (root only); false where the machine does not allow it. */
function dropCaches() {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

const dirBytes = (dir) => readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
const listing = await listDirectory(data);
const looseBytes = listing.paths.reduce((a, p) => a + statSync(join(data, p)).size, 0);
const sources = [{ name: 'loose files', path: data, bytes: looseBytes }];
for (const [name, options] of [
  ['pack (original bytes)', {}],
  ['pack (JPEG q90, 256 px)', { maxSide: 256, quality: 90 }],
]) {
  const out = join(values.packs, name.replace(/\W+/g, '-'));
  const started = performance.now();
  await packDataset(data, out, { ...options, overwrite: true });
  const seconds = (performance.now() - started) / 1000;
  log(`${name}: ${out} (${seconds.toFixed(1)} s to pack)`);
  sources.push({ name, path: out, bytes: dirBytes(out), packSeconds: seconds });
}

// WebDataset tars of the same files: key.jpg + key.cls, shards of about 256 MiB, in a seeded order.
{
  const { create } = await import('tar');
  const out = join(values.packs, 'webdataset');
  const stage = join(values.packs, 'webdataset-stage');
  rmSync(out, { recursive: true, force: true });
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  mkdirSync(stage, { recursive: true });
  const started = performance.now();
  const order = listing.paths.map((_, i) => i).sort((a, b) => ((a * 2654435761) >>> 0) - ((b * 2654435761) >>> 0));
  let members = [];
  let bytes = 0;
  let shard = 0;
  const flush = async () => {
    await create({ file: join(out, `train-${String(shard++).padStart(4, '0')}.tar`), cwd: stage }, members);
    members = [];
    bytes = 0;
  };
  for (const i of order) {
    const key = `s${String(i).padStart(7, '0')}`;
    const ext = listing.paths[i].split('.').pop().toLowerCase();
    copyFileSync(join(data, listing.paths[i]), join(stage, `${key}.${ext}`));
    writeFileSync(join(stage, `${key}.cls`), String(listing.labels[i]));
    members.push(`${key}.${ext}`, `${key}.cls`);
    bytes += statSync(join(stage, `${key}.${ext}`)).size;
    if (bytes >= 256 * 2 ** 20) await flush();
  }
  if (members.length > 0) await flush();
  rmSync(stage, { recursive: true, force: true });
  const seconds = (performance.now() - started) / 1000;
  log(`WebDataset tars: ${out} (${seconds.toFixed(1)} s to write)`);
  sources.push({ name: 'WebDataset tars (original bytes)', path: out, bytes: dirBytes(out), packSeconds: seconds });
}

const epoch = (path, extra = []) => {
  const args = [import.meta.filename, '--row', path, '--size', String(size), ...extra];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`pack.mjs --row ${path} ${extra.join(' ')} failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
};

// The pixel cache in each format: a first epoch over the loose files writes it (its time is the time to
// write), later epochs read it; the rows below time those reads.
for (const format of ['raw', 'png', 'jpeg:90']) {
  const file = join(values.packs, `cache-${format.replace(/\W+/g, '-')}.arrow`);
  rmSync(file, { force: true });
  const extra = ['--cache', file, '--cache-format', format];
  const first = epoch(data, extra);
  if (first.cachePlan !== 'write') throw new Error(`pack.mjs: the ${format} cache was not written (plan ${first.cachePlan})`);
  log(`pixel cache ${format}: ${file} (${first.seconds.toFixed(1)} s for the epoch that wrote it)`);
  sources.push({ name: `pixel cache, ${format}`, path: data, extra, expectPlan: 'read', bytes: statSync(file).size, packSeconds: first.seconds });
}

const droppable = dropCaches();
if (!droppable) log('cannot write /proc/sys/vm/drop_caches here: the cold runs read through a warm page cache');
const runs = Object.fromEntries(sources.map((s) => [s.name, { cold: [], warm: [] }]));
for (let r = 0; r < repeats; r++) {
  for (const s of sources) {
    if (droppable) dropCaches();
    const cold = epoch(s.path, s.extra);
    const warm = epoch(s.path, s.extra);
    for (const e of [cold, warm]) {
      if (s.expectPlan && e.cachePlan !== s.expectPlan) throw new Error(`pack.mjs: ${s.name} was not read from its cache (plan ${e.cachePlan})`);
    }
    runs[s.name].cold.push(cold);
    runs[s.name].warm.push(warm);
    log(
      `repeat ${r + 1}/${repeats} ${s.name}: cold ${cold.imagesPerSecond.toFixed(1)}, warm ${warm.imagesPerSecond.toFixed(1)} images/s, RSS ${cold.peakRssMiB.toFixed(0)} MiB`,
    );
  }
}

const pick = (name, kind, key) => median(runs[name][kind].map((x) => x[key]));
const rows = sources.map((s) => ({
  source: s.name,
  coldImagesPerSecond: pick(s.name, 'cold', 'imagesPerSecond'),
  warmImagesPerSecond: pick(s.name, 'warm', 'imagesPerSecond'),
  peakRssMiB: Math.max(pick(s.name, 'cold', 'peakRssMiB'), pick(s.name, 'warm', 'peakRssMiB')),
  userSeconds: pick(s.name, 'warm', 'userSeconds'),
  systemSeconds: pick(s.name, 'warm', 'systemSeconds'),
  bytesPerImage: s.bytes / listing.paths.length,
  packSeconds: s.packSeconds ?? null,
}));
const loose = rows[0];
for (const row of rows) {
  row.coldRatio = row.coldImagesPerSecond / loose.coldImagesPerSecond;
  row.warmRatio = row.warmImagesPerSecond / loose.warmImagesPerSecond;
}
const result = {
  suite: 'pack',
  machine: machine(),
  images: listing.paths.length,
  size,
  repeats,
  pageCacheDropped: droppable,
  decodeWorkers: availableParallelism(),
  rows,
};
const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const markdown = [
  `One shuffled epoch of ${listing.paths.length} photos decoded to ${size}² RGB uint8 by ${availableParallelism()} decode workers, each epoch a process of its own; ${repeats} interleaved repeats, medians. ` +
    (droppable
      ? 'Cold: the page cache dropped before the epoch (/proc/sys/vm/drop_caches); warm: the epoch right after.'
      : 'The page cache could not be dropped here: cold runs are warm.') +
    " A pixel cache's row reads the cache a first epoch over the loose files wrote (its time to write is that epoch's): raw pixels, PNG (lossless, level 1) or JPEG q90 at the target size." +
    " FFCV's published size for JPEG q90 at 256 px is 17 KB an image.",
  '',
  '| source | cold images/s | ÷ loose | warm images/s | ÷ loose | bytes on disk per image | peak RSS | CPU user / sys (warm) | time to write |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.source} | ${r.coldImagesPerSecond.toFixed(1)} | ${r.coldRatio.toFixed(2)}× | ${r.warmImagesPerSecond.toFixed(1)} | ${r.warmRatio.toFixed(2)}× | ${kb(r.bytesPerImage)} | ${r.peakRssMiB.toFixed(0)} MiB | ${r.userSeconds.toFixed(1)} / ${r.systemSeconds.toFixed(1)} s | ${r.packSeconds === null ? '—' : `${r.packSeconds.toFixed(1)} s`} |`,
  ),
  '',
].join('\n');
await writeSuiteOutputs(values, result, markdown, {
  title: `One epoch at ${size}² from loose files and packs (cold page cache)`,
  unit: 'images/s',
  bars: rows.map((r) => ({ label: r.source, value: r.coldImagesPerSecond })),
});
process.stderr.write(markdown);
process.stdout.write(`${JSON.stringify(result)}\n`);
