import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { predict } from '../dist/index.js';

describe('predict inputs', () => {
  it('refuses a named pipe given as an image, by name, instead of blocking in open()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-predict-fifo-'));
    const fifo = join(dir, 'x.png');
    execFileSync('mkfifo', [fifo]);
    // Refused before the model is even looked at (the model path does not exist).
    await expect(predict({ model: join(dir, 'no-model'), inputs: [fifo] })).rejects.toThrow(
      `predict: ${fifo} is not an image file or a directory (a named pipe); predict reads regular files only`,
    );
    await writeFile(join(dir, 'y.png'), 'not a png');
    await expect(predict({ model: join(dir, 'no-model'), inputs: [join(dir, 'missing.png')] })).rejects.toThrow(
      `predict: ${join(dir, 'missing.png')} does not exist`,
    );
  });
});
