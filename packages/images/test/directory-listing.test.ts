import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codePointCompare, listDirectory } from '../dist/sources/directory.js';
import { tempDir, writeImage, writeText } from './helpers.js';

describe('directory listing (Keras flow_from_directory semantics)', () => {
  it('orders classes and files by code point, walks nested directories sorted by full path', async () => {
    const root = await tempDir();
    for (const p of ['b/z.png', 'b/a.PNG', 'b/sub/c.jpg', 'b/sub b/d.png', 'a/x.jpeg', 'a/notes.txt', 'B/q.bmp']) await writeText(join(root, p), 'x');
    const m = await listDirectory(root);
    expect(m.classNames).toEqual(['B', 'a', 'b']);
    expect(m.classIndices).toEqual({ B: 0, a: 1, b: 2 });
    // Keras sorts os.walk's tuples by root path: 'b' < 'b/sub' < 'b/sub b'; files sorted within each.
    expect(m.paths).toEqual(['B/q.bmp', 'a/x.jpeg', 'b/a.PNG', 'b/z.png', 'b/sub/c.jpg', 'b/sub b/d.png']);
    expect(Array.from(m.labels)).toEqual([0, 1, 2, 2, 2, 2]);
  });

  it('splits each class with floor(split·n) validation files first, as Keras does', async () => {
    const root = await tempDir();
    for (let i = 0; i < 7; i++) await writeText(join(root, 'cat', `${i}.png`), 'x');
    for (let i = 0; i < 3; i++) await writeText(join(root, 'dog', `${i}.png`), 'x');
    const val = await listDirectory(root, { validationSplit: 0.3, subset: 'validation' });
    const train = await listDirectory(root, { validationSplit: 0.3, subset: 'training' });
    expect(val.paths).toEqual(['cat/0.png', 'cat/1.png']); // floor(0.3·7)=2, floor(0.3·3)=0
    expect(train.paths).toEqual(['cat/2.png', 'cat/3.png', 'cat/4.png', 'cat/5.png', 'cat/6.png', 'dog/0.png', 'dog/1.png', 'dog/2.png']);
  });

  it('honours an explicit class list and its order', async () => {
    const root = await tempDir();
    await writeImage(join(root, 'x', '1.png'));
    await writeImage(join(root, 'y', '1.png'));
    const m = await listDirectory(root, { classes: ['y', 'x'] });
    expect(m.paths).toEqual(['y/1.png', 'x/1.png']);
    expect(Array.from(m.labels)).toEqual([0, 1]);
  });

  it('terminates on a symlink loop when following links', async () => {
    const root = await tempDir();
    await writeText(join(root, 'c', 'a.png'), 'x');
    await mkdir(join(root, 'c', 'd'), { recursive: true });
    await symlink(join(root, 'c'), join(root, 'c', 'd', 'loop'));
    const m = await listDirectory(root, { followLinks: true });
    expect(m.paths).toEqual(['c/a.png']);
  });

  it('rejects bad options and missing directories with messages naming them', async () => {
    const root = await tempDir();
    await expect(listDirectory(join(root, 'nope'))).rejects.toThrow(/dataset directory .*nope does not exist/);
    await expect(listDirectory(root)).rejects.toThrow(/has no class subdirectories/);
    await expect(listDirectory(root, { validationSplit: 1.5 })).rejects.toThrow('options.validationSplit must be a number in [0, 1), received 1.5');
    await expect(listDirectory(root, { subset: 'test' as never, validationSplit: 0.2 })).rejects.toThrow(
      `options.subset must be 'training' or 'validation', received "test"`,
    );
  });

  it('compares by code point like Python, not by UTF-16 unit', () => {
    // U+FF5E (one unit, 0xFF5E) sorts before U+1F600 (surrogates 0xD83D…) in Python; JS's default says otherwise.
    expect(['😀', '～'].sort(codePointCompare)).toEqual(['～', '😀']);
    expect(['😀', '～'].sort()).toEqual(['😀', '～']);
    // Against the definition, on seeded strings mixing ASCII, U+E000–U+FFFF and astral code points,
    // prefixes of each other included: the sign of the first differing code point, else the shorter first.
    const alphabet = ['a', 'b', 'Z', '0', '\ue000', '～', '\uffff', '😀', '𝄞', '\u{10ffff}', 'é'];
    let state = 7;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state;
    };
    const word = () => Array.from({ length: next() % 5 }, () => alphabet[next() % alphabet.length]).join('');
    const byDefinition = (a: string, b: string) => {
      const x = [...a].map((c) => c.codePointAt(0)!);
      const y = [...b].map((c) => c.codePointAt(0)!);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return Math.sign(x[i]! - y[i]!);
      return Math.sign(x.length - y.length);
    };
    for (let i = 0; i < 4000; i++) {
      const a = word();
      const b = i % 5 === 0 ? a + word() : word();
      expect(Math.sign(codePointCompare(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(byDefinition(a, b));
      expect(Math.sign(codePointCompare(b, a))).toBe(byDefinition(b, a));
    }
  });
});
