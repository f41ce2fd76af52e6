import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
