import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHIPPED_DATASET } from '@featherstack/fixtures';
import { bin } from './cli.js';

// --on-error skip on run, predict and evaluate: every bad file is reported, the rest is used.

const root = join(import.meta.dirname, '..');
const shipped = SHIPPED_DATASET;

function featherstack(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
}

/** The shipped dataset with one damaged image in train/ and two in val/. */
function damagedDataset() {
  const data = mkdtempSync(join(tmpdir(), 'fs-on-error-'));
  cpSync(shipped, data, { recursive: true });
  const bad = [join(data, 'train', '0_t-shirt_top', 'damaged.png'), join(data, 'val', '3_dress', 'damaged.png'), join(data, 'val', '5_sandal', 'empty.jpg')];
  writeFileSync(bad[0]!, 'not an image');
  writeFileSync(bad[1]!, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0]));
  writeFileSync(bad[2]!, '');
  return { data, bad };
}

const count = (dir: string) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

describe('--on-error', () => {
  const { data, bad } = damagedDataset();
  const out = mkdtempSync(join(tmpdir(), 'fs-on-error-out-'));

  it('run stops at a damaged image by default, naming it and how to go on', () => {
    const result = featherstack(['run', '--data', data, '--out', join(out, 'raise'), '--base-epochs', '1', '--head-epochs', '1']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/featherstack: cannot load image .*damaged\.png: .* \(--on-error skip leaves such images out and reports each one\)/);
  });

  it('run --on-error skip trains without the damaged images and reports each of them once', () => {
    const result = featherstack([
      'run',
      '--data',
      data,
      '--out',
      join(out, 'skip'),
      '--base-epochs',
      '2',
      '--head-epochs',
      '1',
      '--on-error',
      'skip',
      '--json',
    ]);
    expect(result.status, result.stderr).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(json.skipped.map((s: { path: string }) => s.path).sort()).toEqual([...bad].sort());
    for (const s of json.skipped) expect(s.reason.length).toBeGreaterThan(0);
    expect(json.features.rows.train).toBe(count(join(data, 'train')) - 1);
    expect(json.features.rows.val).toBe(count(join(data, 'val')) - 2);
  });

  it('predict --on-error skip predicts every loadable image and reports every bad one, in input order', () => {
    const good = join(data, 'val', '3_dress', readdirSync(join(data, 'val', '3_dress')).find((f) => f.startsWith('t10k'))!);
    const model = join(out, 'skip', 'model');
    const raise = featherstack(['predict', '--model', model, good, bad[1]!, good, bad[2]!]);
    expect(raise.status).toBe(1);
    expect(raise.stderr).toContain(`cannot load image ${bad[1]}`);
    const text = featherstack(['predict', '--model', model, '--on-error', 'skip', good, bad[1]!, good, bad[2]!]);
    expect(text.status).toBe(0);
    expect(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
    ).toEqual([good, good]);
    expect(text.stderr).toContain(`featherstack: skipped ${bad[1]}: `);
    expect(text.stderr).toContain(`featherstack: skipped ${bad[2]}: `);
    const json = JSON.parse(featherstack(['predict', '--model', model, '--on-error', 'skip', '--json', good, bad[1]!, bad[2]!]).stdout);
    expect(json.map((r: { path: string }) => r.path)).toEqual([good, bad[1], bad[2]]);
    expect(json[0].classes).toHaveLength(3);
    expect(json[1].classes).toEqual([]);
    expect(json[1].error).toMatch(/PNG/);
    // Nothing loadable at all is a failure, not an empty result with exit status 0.
    const none = featherstack(['predict', '--model', model, '--on-error', 'skip', bad[1]!, bad[2]!]);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(`predict: none of the 2 images could be loaded (the first, ${bad[1]}: `);
  });

  it('run --on-error skip refuses a class whose every training image is bad, by name, instead of an untrained output', () => {
    const broken = mkdtempSync(join(tmpdir(), 'fs-on-error-class-'));
    cpSync(shipped, broken, { recursive: true });
    const dead = join(broken, 'train', '4_coat');
    const files = readdirSync(dead);
    for (const f of files) writeFileSync(join(dead, f), 'not an image');
    const result = featherstack(['run', '--data', broken, '--out', join(out, 'dead-class'), '--base-epochs', '1', '--head-epochs', '1', '--on-error', 'skip']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `${join(broken, 'train')}: class '4_coat' (${files.length} images skipped) has no loadable training image: the head cannot learn a class it never sees`,
    );
  });

  it('evaluate --on-error skip scores the loadable images and lists the rest', () => {
    const result = featherstack(['evaluate', '--model', join(out, 'skip', 'model'), '--data', join(data, 'val'), '--on-error', 'skip', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.samples).toBe(count(join(data, 'val')) - 2);
    expect(report.skipped.map((s: { path: string }) => s.path).sort()).toEqual([bad[1], bad[2]].sort());
    expect(result.stderr).toContain(`featherstack: skipped ${bad[2]}: `);
  });
});
