import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const READMES = ['README.md', 'packages/cli/README.md', 'packages/images/README.md', 'packages/pipeline/README.md'];

describe('README examples', () => {
  it('every TypeScript example typechecks against the built packages', () => {
    const dir = join(import.meta.dirname, '.readme-examples');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const files: string[] = [];
    for (const readme of READMES) {
      const blocks = [...readFileSync(join(root, readme), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
      for (const [i, code] of blocks.entries()) {
        const file = `${readme.replace(/[/.]/g, '_')}_${i}.ts`;
        // Each block is a module of its own (top-level await, no shared names).
        writeFileSync(join(dir, file), `${code}\nexport {};\n`);
        files.push(file);
      }
    }
    expect(files.length).toBeGreaterThanOrEqual(2);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true, noUnusedLocals: false }, include: ['*.ts'] }),
    );
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr, files.join(', ')).toBe('');
    expect(tsc.status).toBe(0);
  });
});
