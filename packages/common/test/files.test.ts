import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recoverDirectory, writeDirectoryAtomic } from '../dist/index.js';

const version = (n: number) => async (tmp: string) => writeFile(join(tmp, 'v.txt'), String(n));

describe('writeDirectoryAtomic', () => {
  it('replaces a directory whole and leaves nothing beside it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fs-atomic-'));
    const dir = join(root, 'checkpoint');
    await writeDirectoryAtomic(dir, 'the checkpoint', version(1));
    await writeDirectoryAtomic(dir, 'the checkpoint', version(2));
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('2');
    expect(readdirSync(root)).toEqual(['checkpoint']);
  });

  it('keeps the previous version when filling fails, and names the target', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fs-atomic-'));
    const dir = join(root, 'model');
    await writeDirectoryAtomic(dir, 'the stacked model', version(1));
    const failing = async () => {
      throw new Error('ENOSPC: no space left on device');
    };
    await expect(writeDirectoryAtomic(dir, 'the stacked model', failing)).rejects.toThrow(`cannot write the stacked model ${dir}: ENOSPC`);
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('1');
    expect(readdirSync(root)).toEqual(['model']);
  });

  it('a kill between its two renames loses nothing: the old version is put back', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fs-atomic-'));
    const dir = join(root, 'checkpoint');
    await writeDirectoryAtomic(dir, 'the checkpoint', version(1));
    renameSync(dir, `${dir}.old`); // what a kill after the first rename leaves
    expect(existsSync(dir)).toBe(false);
    await recoverDirectory(dir);
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('1');
    // Killed after the second rename: the new version is in place and the old one is only left over.
    renameSync(dir, `${dir}.old`);
    await writeDirectoryAtomic(`${dir}`, 'the checkpoint', version(3));
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('3');
    expect(readdirSync(root)).toEqual(['checkpoint']);
    await recoverDirectory(dir); // nothing to do
    expect(readFileSync(join(dir, 'v.txt'), 'utf8')).toBe('3');
  });
});
