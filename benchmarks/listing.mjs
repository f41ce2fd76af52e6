#!/usr/bin/env node
// Directory listing at scale: creates N empty *.png files in 10 class folders (once, in --dir) and
// times listDirectory, reporting the heap it retains against the manifest's own size.
//
//   node --expose-gc benchmarks/listing.mjs [--files 100000] [--dir /tmp/featherstack-listing]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { listDirectory } from '@featherstack/images';

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, dir: { type: 'string', default: '/tmp/featherstack-listing' } } });
const n = Number(values.files);
const dir = `${values.dir}-${n}`;
if (!existsSync(join(dir, 'done'))) {
  for (let c = 0; c < 10; c++) mkdirSync(join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `class${i % 10}`, `${String(i).padStart(7, '0')}.png`), '');
  writeFileSync(join(dir, 'done'), '');
}
globalThis.gc?.();
const before = process.memoryUsage().heapUsed;
const started = performance.now();
const manifest = await listDirectory(dir);
const seconds = (performance.now() - started) / 1000;
globalThis.gc?.();
const retained = process.memoryUsage().heapUsed - before;
const pathBytes = manifest.paths.reduce((s, p) => s + p.length, 0);
process.stdout.write(
  `${JSON.stringify({ files: manifest.paths.length, seconds: Number(seconds.toFixed(2)), filesPerSecond: Math.round(manifest.paths.length / seconds), retainedMiB: Number((retained / 2 ** 20).toFixed(1)), pathCharactersMiB: Number((pathBytes / 2 ** 20).toFixed(1)) })}\n`,
);
