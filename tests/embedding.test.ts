import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHIPPED_DATASET, SHIPPED_VAL } from '@featherstack/fixtures';
import { describe, expect, it } from 'vitest';

/** A package's directory, found by name as the workspace links it. */
const packageDir = (name: string) => dirname(fileURLToPath(import.meta.resolve(`@featherstack/${name}/package.json`)));

describe('embedding (an outside project importing the built packages)', () => {
  it('uses every stage through the packages’ exports maps (with progress events and an AbortSignal), and cannot reach their internals', async () => {
    const project = await mkdtemp(join(tmpdir(), 'fs-embed-'));
    mkdirSync(join(project, 'node_modules', '@featherstack'), { recursive: true });
    for (const name of ['common', 'images', 'core', 'head', 'tensorflow', 'report', 'pipeline', 'fixtures', 'cli'])
      symlinkSync(packageDir(name), join(project, 'node_modules', '@featherstack', name));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'outside', type: 'module', private: true }));
    const data = SHIPPED_VAL;
    writeFileSync(
      join(project, 'main.mjs'),
      `
import { createImagePool, flowFromDirectory } from '@featherstack/images';
import { createBaseModel, extractFeatures, featureExtractor, trainBase, withClassifier } from '@featherstack/core';
import { readFeatureFile, stackModels, trainHead } from '@featherstack/head';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { runWorkflow } from '@featherstack/pipeline';
import { lineChart, svgToPng } from '@featherstack/report';
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const pool = createImagePool({ workers: 2 });
const common = { pool, targetSize: [28, 28], colorMode: 'grayscale', batchSize: 100, seed: 1, augment: { rescale: 1 / 255 } };
const train = await flowFromDirectory(${JSON.stringify(data)}, common);
const plain = await flowFromDirectory(${JSON.stringify(data)}, { ...common, shuffle: false });
const controller = new AbortController();
const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [8], dense: [16] });
const history = await trainBase(tf, withClassifier(tf, base, 10), train, { epochs: 1, signal: controller.signal });
const file = ${JSON.stringify(join(project, 'f.arrow'))};
const batches = [];
const extracted = await extractFeatures(tf, featureExtractor(tf, base), plain, file, { onBatch: (p) => batches.push(p.batch) });
const set = await readFeatureFile(file);
const epochs = [];
const head = await trainHead(tf, set, set, { epochs: 2, units: [8], onEpochEnd: (e, log) => epochs.push([e, log.rows]) });
const stacked = stackModels(tf, base, head.model);
await Promise.all([train.close(), plain.close()]);
await pool.close();
// The whole workflow as a function, stopped by its AbortSignal from a progress event.
const stop = new AbortController();
let stopped = 'ran to the end';
try {
  await runWorkflow({ data: ${JSON.stringify(SHIPPED_DATASET)}, out: ${JSON.stringify(join(project, 'run'))}, baseEpochs: 1, signal: stop.signal,
    onBaseBatch: (p) => { if (p.batch === 3) stop.abort(new Error('enough')); } });
} catch (e) { stopped = e.message; }
const png = await svgToPng(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ label: 'a', points: [[0, 1], [1, 2]] }] }));
let internal = 'reachable';
try { await import('@featherstack/images/dist/flow/flow.js'); } catch (e) { internal = e.code; }
console.log(JSON.stringify({ epochs: history.length, rows: extracted.rows, batches, headEpochs: epochs, outputs: stacked.outputs[0].shape, stopped, png: png.subarray(1, 4).toString(), internal }));
`,
    );
    const out = execFileSync(process.execPath, ['main.mjs'], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
      epochs: 1,
      rows: 500,
      batches: [1, 2, 3, 4, 5],
      headEpochs: [
        [0, 500],
        [1, 500],
      ],
      outputs: [null, 10],
      stopped: 'enough',
      png: 'PNG',
      internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });
});
