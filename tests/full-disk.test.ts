import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import { flowFromDirectory } from '@featherstack/images';
import { bin } from './cli.js';

// A full disk, for real: `run --out` on small tmpfs mounts (the test runs as root, as CI does), so
// that every stage in turn meets ENOSPC.

const base = mkdtempSync(join(tmpdir(), 'fs-full-disk-'));
const args = ['run', '--base-epochs', '1', '--head-epochs', '1', '--workers', '2'];

function run(out: string) {
  return spawnSync(process.execPath, [bin, ...args, '--out', out], { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
}

function files(dir: string): { path: string; size: number }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => ({ path: join(e.parentPath, e.name), size: statSync(join(e.parentPath, e.name)).size }));
}

afterAll(() => {
  for (const entry of readdirSync(base)) spawnSync('umount', [join(base, entry)]);
  rmSync(base, { recursive: true, force: true });
});

/** A fresh tmpfs of `kib` KiB under the test's directory. */
function tmpfs(name: string, kib: number): string {
  const mount = join(base, name);
  spawnSync('mkdir', ['-p', mount]);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', mount], { encoding: 'utf8' });
  expect(mounted.status, `mounting a tmpfs needs root: ${mounted.stderr}`).toBe(0);
  return mount;
}

describe('the pixel cache budget (never a full disk halfway through an epoch)', () => {
  const train = join(SHIPPED_DATASET, 'train');
  const options = { targetSize: [28, 28] as [number, number], colorMode: 'grayscale' as const, batchSize: 64, workers: 2, augment: { rescale: 1 / 255 } };

  it('by default a cache may take half the free space: one that needs more is not written, and the flow says why', async () => {
    // 2,000 images at 28×28×1 are 1.6 MiB of cache: more than half of a 2 MiB disk, less than all of it.
    const disk = tmpfs('budget-default', 2048);
    const flow = await flowFromDirectory(train, { ...options, cache: join(disk, 'cache', 'pixels.arrow') });
    try {
      expect(flow.cachePlan).toMatchObject({ state: 'over-budget', path: join(disk, 'cache', 'pixels.arrow') });
      expect(flow.cachePlan.state === 'over-budget' && flow.cachePlan.reason).toMatch(
        /^2000 images at 28×28×1 need 1\.6 MiB, more than its budget of 1\.0 MiB \(half the 2\.0 MiB free on its filesystem\); epochs decode instead/,
      );
      let rows = 0;
      for await (const b of flow) rows += b.size;
      expect(rows).toBe(2000);
      expect(files(disk)).toEqual([]);
      expect(flow.cached).toBe(false);
    } finally {
      await flow.close();
    }
  });

  it('within its budget the cache is written, and its size is what the plan said (never more)', async () => {
    const disk = tmpfs('budget-given', 4096);
    const flow = await flowFromDirectory(train, { ...options, cache: join(disk, 'pixels.arrow'), cacheBudget: 3 * 2 ** 20 });
    try {
      expect(flow.cachePlan).toMatchObject({ state: 'write', budget: 3 * 2 ** 20 });
      for await (const _ of flow) {
      }
      expect(flow.cached).toBe(true);
      const planned = flow.cachePlan.state === 'write' ? (flow.cachePlan.bytes ?? 0) : 0;
      const written = statSync(join(disk, 'pixels.arrow')).size;
      expect(written).toBeLessThanOrEqual(planned);
      expect(written).toBeGreaterThan(planned * 0.97);
    } finally {
      await flow.close();
    }
    // A budget it does not fit: refused by size, on the flag's own terms.
    const small = await flowFromDirectory(train, { ...options, cache: join(disk, 'other.arrow'), cacheBudget: 2 ** 20 });
    expect(small.cachePlan.state === 'over-budget' && small.cachePlan.reason).toMatch(/need 1\.6 MiB, more than its budget of 1\.0 MiB \(cacheBudget\)/);
    await small.close();
  });

  it('run --cache-budget on a disk the cache would fill: run says so first, decodes instead, and completes', () => {
    // Room for the run's other outputs (about 5 MB) but not for them and the 1.6 MB cache too.
    const disk = tmpfs('budget-run', 5800);
    const out = join(disk, 'run');
    const result = spawnSync(process.execPath, [bin, ...args, '--cache-budget', '1M', '--out', out], {
      encoding: 'utf8',
      cwd: join(import.meta.dirname, '..'),
    });
    expect(result.status, result.stderr.slice(-600)).toBe(0);
    const lines = result.stderr.split('\n');
    const said = lines.findIndex((l) => l.startsWith('pixel cache: off, 2000 images at 28×28×1 need 1.6 MiB, more than its budget of 1.0 MiB (cacheBudget)'));
    expect(said).toBeGreaterThanOrEqual(0);
    expect(said).toBeLessThan(lines.findIndex((l) => l.startsWith('base epoch 1')));
    expect(files(disk).filter((f) => f.path.includes('/cache/'))).toEqual([]);
  });

  it('run --cache png over its budget: the training flow gives it up once, and extraction does not try it again', () => {
    const out = mkdtempSync(join(base, 'png-over-budget-'));
    const result = spawnSync(process.execPath, [bin, ...args, '--cache', 'png', '--cache-budget', '100K', '--out', out], {
      encoding: 'utf8',
      cwd: join(import.meta.dirname, '..'),
    });
    expect(result.status, result.stderr.slice(-600)).toBe(0);
    const givenUp = result.stderr.split('\n').filter((l) => l.includes('[FEATHERSTACK_CACHE_OVER_BUDGET]'));
    expect(givenUp).toHaveLength(1);
    expect(givenUp[0]).toMatch(/pixel cache .*train-28x28-grayscale-png\.arrow \(png\): its first 32 images took .* more than its budget of 0\.1 MiB/);
    expect(files(out).filter((f) => f.path.includes('/cache/'))).toEqual([]);
  });
});

describe('a full disk (ENOSPC) at every stage of run', () => {
  it('names the file it could not write, exits 1, and leaves no .partial or .writing file behind', () => {
    const reference = join(base, 'reference');
    expect(run(reference).status).toBe(0);
    const total = files(reference).reduce((n, f) => n + f.size, 0);
    const named = new Set<string>();
    // Mount sizes across the run's whole output, so that the disk fills in each stage in turn.
    for (const fraction of [0.15, 0.35, 0.55, 0.7, 0.8, 0.9, 0.97]) {
      const mount = join(base, `disk-${fraction}`);
      spawnSync('mkdir', ['-p', mount]);
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.floor((total * fraction) / 1024)}k`, 'tmpfs', mount], { encoding: 'utf8' });
      expect(mounted.status, `mounting a tmpfs needs root: ${mounted.stderr}`).toBe(0);
      const out = join(mount, 'run');
      const result = run(out);
      const what = `at ${Math.round(fraction * 100)} % of ${total} bytes`;
      expect(result.status, what).toBe(1);
      const message = result.stderr.split('\n').find((l) => l.startsWith('featherstack:'));
      expect(message, `${what}: ${result.stderr.slice(-400)}`).toMatch(
        new RegExp(`^featherstack: cannot write (the checkpoint |the stacked model )?${out}/(\\S+): ENOSPC: no space left on device`),
      );
      named.add(message!.match(new RegExp(`${out}/([^/:]+)`))![1]!);
      const junk = files(mount).filter((f) => /\.partial$|\.writing(\/|$)/.test(f.path));
      expect(junk, what).toEqual([]);
      spawnSync('umount', [mount]);
    }
    // The disk filled in several stages: the pixel cache, the checkpoint, the features, the report.
    expect(named.size).toBeGreaterThanOrEqual(3);
  });
});
