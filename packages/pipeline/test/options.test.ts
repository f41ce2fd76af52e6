import { writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUGMENT_KEYS } from '@featherstack/images';
import { describe, expect, it } from 'vitest';
import { applyConfig, augmentSchema, parseAugmentFlag, readRunConfig } from '../dist/options.js';

describe('--augment', () => {
  it('reads key=value pairs (numbers, booleans, [lo, hi], bare strings) and JSON objects alike', () => {
    const pairs = parseAugmentFlag('rescale=0.5, zoomRange=[0.8,1.2],fillMode=nearest,horizontalFlip=true,rotationRange=10');
    expect(pairs).toEqual({ rescale: 0.5, zoomRange: [0.8, 1.2], fillMode: 'nearest', horizontalFlip: true, rotationRange: 10 });
    expect(parseAugmentFlag('{"shearRange": 0.2, "verticalFlip": false}')).toEqual({ shearRange: 0.2, verticalFlip: false });
  });

  it('names the key and what was expected, and lists the known keys for a typo', () => {
    expect(() => parseAugmentFlag('horizontalFlip=yes')).toThrow('augment.horizontalFlip: Invalid input: expected boolean, received string');
    expect(() => parseAugmentFlag('zoomRange=big')).toThrow('augment.zoomRange: expected a number in [0, 1) or [lo, hi]');
    expect(() => parseAugmentFlag('shearRnge=0.2')).toThrow(/unknown key: shearRnge; known: rotationRange, .*shearRange/);
    expect(() => parseAugmentFlag('shearRange')).toThrow(
      "--augment: expected key=value pairs separated by commas (e.g. shearRange=0.2,horizontalFlip=true), received 'shearRange'",
    );
    expect(() => parseAugmentFlag('{"shearRange": }')).toThrow('--augment: not valid JSON');
  });

  it('knows exactly the options the image engine knows', () => {
    expect(Object.keys(augmentSchema.shape).sort()).toEqual([...AUGMENT_KEYS].sort());
  });
});

describe('run config', () => {
  it('lets flags win, merges augment key by key, and widens imageSize N to [N, N]', () => {
    const config = { baseEpochs: 3, headEpochs: 4, imageSize: 32, augment: { rescale: 0.5, shearRange: 0.2 } };
    const cli = new Set(['headEpochs', 'augment']);
    const merged = applyConfig({ headEpochs: 9, baseEpochs: 5, augment: { shearRange: 0.1, horizontalFlip: true } }, config, (k) => cli.has(k));
    expect(merged).toEqual({ headEpochs: 9, baseEpochs: 3, imageSize: [32, 32], augment: { rescale: 0.5, shearRange: 0.1, horizontalFlip: true } });
    // Without the flag, the file's augment is taken whole.
    expect(applyConfig({ augment: undefined }, config, () => false).augment).toEqual({ rescale: 0.5, shearRange: 0.2 });
  });

  it('refuses a misspelt augmentation key in the file with the file, the key and the known keys', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'fs-cfg-')), 'run.yaml');
    await writeFile(file, 'augment: { shearRnge: 0.2, zoomRange: big, rescale: 0.5 }\n');
    const error = await readRunConfig(file).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`config ${file} is invalid:`);
    expect((error as Error).message).toContain('augment.zoomRange: expected a number in [0, 1) or [lo, hi]');
    expect((error as Error).message).toMatch(/augment: Unrecognized key: "shearRnge" \(unknown key: shearRnge; known: rotationRange, /);
  });

  it('refuses a YAML value that is not plain data (!!binary, !!set) by key, without listing its methods', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-cfg-'));
    await writeFile(join(dir, 'binary.yaml'), 'data: !!binary aGVsbG8=\n');
    await expect(readRunConfig(join(dir, 'binary.yaml'))).rejects.toThrow(
      `config ${join(dir, 'binary.yaml')} is invalid:\n  data: is binary data (a YAML !!binary value); a config holds plain strings, numbers, booleans, lists and maps`,
    );
    await writeFile(join(dir, 'set.yaml'), 'augment:\n  rotationRange: !!set { a, b }\n');
    await expect(readRunConfig(join(dir, 'set.yaml'))).rejects.toThrow('  augment.rotationRange: is a Set value; a config holds plain');
  });
});
