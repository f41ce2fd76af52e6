import { readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listDirectory } from '../dist/index.js';
import { tempDir } from './helpers.js';

// Random trees listed and split by Keras 3's own flow_from_directory (benchmarks/golden/keras_listing.py).
interface Listing {
  followLinks: boolean;
  validationSplit: number;
  subset: 'training' | 'validation' | null;
  filenames: string[];
  labels: number[];
  classIndices: Record<string, number>;
}
const golden = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'keras-listing-trees.json'), 'utf8')) as {
  trees: { entries: { t: 'd' | 'f' | 'l'; p: string; to?: string }[]; loop: boolean; listings: Listing[] }[];
};

async function materialise(entries: (typeof golden.trees)[number]['entries']): Promise<string> {
  const base = await tempDir();
  for (const e of entries) {
    if (e.t === 'd') await mkdir(join(base, e.p), { recursive: true });
    else if (e.t === 'f') await writeFile(join(base, e.p), '');
  }
  for (const e of entries) if (e.t === 'l') await symlink(e.to!, join(base, e.p));
  return join(base, 'root');
}

describe(`directory listing equals Keras's flow_from_directory on ${golden.trees.length} generated trees`, () => {
  it('covers at least 50 trees with every kind of entry', () => {
    expect(golden.trees.length).toBeGreaterThanOrEqual(50);
    const targets = golden.trees.flatMap((t) => t.entries.filter((e) => e.t === 'l').map((e) => e.to!));
    expect(targets.some((t) => t.endsWith('missing.png'))).toBe(true);
    expect(targets.some((t) => t.includes('outside/ext'))).toBe(true);
    expect(golden.trees.some((t) => t.loop)).toBe(true);
    expect(golden.trees.some((t) => t.listings.some((l) => l.followLinks))).toBe(true);
  });

  for (const [index, tree] of golden.trees.entries()) {
    const links = tree.entries.filter((e) => e.t === 'l').length;
    it(`tree ${index}: ${tree.entries.length} entries, ${links} symlinks${tree.loop ? ' (a loop)' : ''}, ${tree.listings.length} listings`, async () => {
      const root = await materialise(tree.entries);
      for (const l of tree.listings) {
        const manifest = await listDirectory(root, {
          followLinks: l.followLinks,
          ...(l.subset ? { validationSplit: l.validationSplit, subset: l.subset } : {}),
        });
        const what = `followLinks ${l.followLinks}, split ${l.validationSplit} ${l.subset ?? ''}`;
        expect(manifest.classIndices, what).toEqual(l.classIndices);
        expect(manifest.paths, what).toEqual(l.filenames);
        expect(Array.from(manifest.labels), what).toEqual(l.labels);
      }
    });
  }
});
