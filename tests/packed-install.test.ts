import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const packagesDir = join(root, 'packages');

/** Every publishable package: new ones under packages/ are picked up without editing this test. */
function publicPackages(): { dir: string; name: string }[] {
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(packagesDir, entry.name, 'package.json')))
    .map((entry) => ({ dir: join(packagesDir, entry.name), manifest: JSON.parse(readFileSync(join(packagesDir, entry.name, 'package.json'), 'utf8')) }))
    .filter(({ manifest }) => manifest.private !== true)
    .map(({ dir, manifest }) => ({ dir, name: manifest.name as string }));
}

/**
 * The environment of a user's shell: without the npm_* variables of the `npm test` that runs this
 * suite (npm_lifecycle_event, npm_config_local_prefix, …), which would leak into the nested npm.
 */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'INIT_CWD' && key !== 'NODE_PATH' && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout: number }) {
  const started = performance.now();
  const result = spawnSync(cmd, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const seconds = (performance.now() - started) / 1000;
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.error || result.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${options.cwd}) failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`}) after ${seconds.toFixed(0)} s:\n${output.slice(-6000)}`,
    );
  }
  return { stdout: result.stdout, output, seconds };
}

let work: string | undefined;
afterAll(() => {
  // The provisioning cache of a cold install holds ~850 MB of libtensorflow.
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('packed-install (the packages as npm tarballs, installed outside the repository)', () => {
  it('installs every packed package with one plain `npm install`, offline from the libtensorflow host, and runs a stage on native TensorFlow', async () => {
    work = await mkdtemp(join(tmpdir(), 'fs-packed-'));
    const packs = join(work, 'packs');
    const project = join(work, 'project');
    mkdirSync(packs);
    mkdirSync(project);

    // pnpm pack rewrites the workspace:* ranges into the packages' versions, as publishing does.
    const packages = publicPackages();
    expect(packages.map((p) => p.name)).toContain('@featherstack/tensorflow');
    let packSeconds = 0;
    for (const { dir } of packages)
      packSeconds += run(join(root, 'node_modules', '.bin', 'pnpm'), ['pack', '--pack-destination', packs], { cwd: dir, timeout: 120_000 }).seconds;
    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(packages.length);
    // The session addon is not shipped (it would be linked against this checkout's libtensorflow):
    // the install builds it.
    const tensorflowTarball = tarballs.find((f) => f.startsWith('featherstack-tensorflow-'))!;
    const listing = run('tar', ['tzf', join(packs, tensorflowTarball)], { cwd: work, timeout: 60_000 }).stdout;
    expect(listing).toContain('package/native/session.cc');
    expect(listing).not.toMatch(/\.node$/m);

    // The documented command (packages/tensorflow/README.md, "Installing outside this repository"),
    // in a fresh project, with an empty provisioning cache. TFJS_NODE_CDN_STORAGE points tfjs-node's
    // download at a closed local port, so the libtensorflow host is unreachable here even on a
    // machine that could reach it: provisioning must take the offline route (the tensorflow-cpu wheel
    // from the pip index). The npm registry is used for third-party dependencies.
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'outside', private: true, type: 'module' }, null, 2)}\n`);
    const cache = join(work, 'featherstack-cache');
    const env = userEnv({ FEATHERSTACK_CACHE: cache, TFJS_NODE_CDN_STORAGE: 'http://127.0.0.1:9/' });
    const install = run('npm', ['install', ...tarballs.map((f) => join(packs, f))], { cwd: project, env, timeout: 240_000 });
    console.info(`packed-install: pnpm pack ${packSeconds.toFixed(0)} s, npm install ${install.seconds.toFixed(0)} s`);

    const tfjsNode = join(project, 'node_modules', '@tensorflow', 'tfjs-node');
    expect(JSON.parse(readFileSync(join(tfjsNode, 'featherstack-provision.json'), 'utf8'))).toMatchObject({
      provisionedFrom: 'wheel',
      cache: expect.stringContaining(cache),
    });
    expect(existsSync(join(project, 'node_modules', '@featherstack', 'tensorflow', 'native', 'build', 'featherstack_session.node'))).toBe(true);
    expect(existsSync(join(project, 'node_modules', '.bin', 'featherstack-provision'))).toBe(true);
    // @featherstack/images' install script compiles its JPEG decoder (libjpeg-turbo) in place.
    expect(existsSync(join(project, 'node_modules', '@featherstack', 'images', 'native', 'build', 'featherstack_jpeg.node'))).toBe(true);

    // 32 PNG files in two class folders, as flowFromDirectory expects: vertical or horizontal
    // stripes with a per-image texture, written here so that the test does not depend on where the
    // repository keeps its dataset.
    for (const [label, vertical] of [
      ['stripes_v', true],
      ['stripes_h', false],
    ] as const) {
      mkdirSync(join(project, 'images', label), { recursive: true });
      for (let i = 0; i < 16; i++) {
        const pixels = Buffer.alloc(28 * 28);
        for (let y = 0; y < 28; y++)
          for (let x = 0; x < 28; x++) pixels[y * 28 + x] = ((vertical ? x : y) % 7 < 3 ? 180 : 20) + ((x * 31 + y * 17 + i * 13) % 64);
        await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
          .png()
          .toFile(join(project, 'images', label, `${i}.png`));
      }
    }
    // Only the public package names: every packed package's entry point, then a stage (decode →
    // train on the graph engine, i.e. through the session addon built at install → extract).
    writeFileSync(
      join(project, 'main.mjs'),
      `
for (const name of ${JSON.stringify(packages.map((p) => p.name))}) await import(name);
const { loadTensorFlow, tensorflowReport } = await import('@featherstack/tensorflow');
const { createImagePool, flowFromDirectory } = await import('@featherstack/images');
const { createBaseModel, extractFeatures, featureExtractor, trainBase, withClassifier } = await import('@featherstack/core');
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const report = tensorflowReport();
const pool = createImagePool({ workers: 2 });
const common = { pool, targetSize: [28, 28], colorMode: 'grayscale', batchSize: 8, seed: 1, augment: { rescale: 1 / 255 } };
const train = await flowFromDirectory('images', common);
const plain = await flowFromDirectory('images', { ...common, shuffle: false });
const base = createBaseModel(tf, { inputShape: [28, 28, 1], filters: [4], dense: [8] });
const history = await trainBase(tf, withClassifier(tf, base, 2), train, { epochs: 1, engine: 'graph' });
const extracted = await extractFeatures(tf, featureExtractor(tf, base), plain, 'features.arrow');
await Promise.all([train.close(), plain.close()]);
await pool.close();
console.log(JSON.stringify({ backend: tf.getBackend(), provisionedFrom: report.provisionedFrom, engine: history[0].engine, loss: Number.isFinite(history[0].loss), rows: extracted.rows }));
`,
    );
    const stage = run(process.execPath, ['main.mjs'], { cwd: project, env: userEnv({ FEATHERSTACK_CACHE: cache }), timeout: 180_000 });
    console.info(`packed-install: stage ${stage.seconds.toFixed(0)} s`);
    expect(JSON.parse(stage.stdout.trim().split('\n').pop()!)).toEqual({
      backend: 'tensorflow',
      provisionedFrom: 'wheel',
      engine: 'graph',
      loss: true,
      rows: 32,
    });
  });
});
