import { RUN_DEFAULTS, resolveRunOptions, runConfigSchema, runOptionHelp } from '@featherstack/pipeline';
import { Command, InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import * as parse from '../dist/parsers.js';
import { runFlag, runFlags } from '../dist/run-flags.js';

// The flag parsers, tested directly; tests/stacked-workflow.test.ts checks once that a bad value
// makes the process exit with 2.
const refuses = (f: (v: string) => unknown, value: string, message: string) => {
  expect(() => f(value)).toThrow(InvalidArgumentError);
  expect(() => f(value)).toThrow(message);
};

describe('flag parsers', () => {
  it('int: positive safe integers only, naming the flag', () => {
    expect(parse.int('--batch-size')('32')).toBe(32);
    for (const bad of ['zero', '0', '-1', '2.5', '', 'NaN', '99999999999999999999'])
      refuses(parse.int('--batch-size'), bad, `--batch-size must be a positive integer, received '${bad}'`);
  });

  it('size: N or HxW', () => {
    expect(parse.size('28')).toEqual([28, 28]);
    expect(parse.size('224x160')).toEqual([224, 160]);
    for (const bad of ['28by28', '0x0', '28x', 'x28', '28x28x3', '-5x5']) {
      refuses(parse.size, bad, `--image-size must be N or HxW of positive integers (e.g. 28 or 224x224), received '${bad}'`);
    }
  });

  it('bytes: a size with binary units, or a count of bytes, naming the flag', () => {
    const bytes = parse.bytes('--cache-budget');
    expect(bytes('10000')).toBe(10000);
    expect(bytes('500M')).toBe(500 * 2 ** 20);
    expect(bytes('2G')).toBe(2 * 2 ** 30);
    expect(bytes('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(bytes('64kb')).toBe(64 * 2 ** 10);
    for (const bad of ['', '0', '-1G', 'lots', '2X', '0.5'])
      refuses(bytes, bad, `--cache-budget must be a size such as 500M, 2G or a number of bytes, received '${bad}'`);
  });

  it('choices: colour mode, error policy, pooling, preprocess', () => {
    expect(parse.colorMode('rgb')).toBe('rgb');
    refuses(parse.colorMode, 'cmyk', "--color-mode must be grayscale, rgb or rgba, received 'cmyk'");
    expect(parse.onError('skip')).toBe('skip');
    refuses(parse.onError, 'sometimes', "--on-error must be raise or skip, received 'sometimes'");
    refuses(parse.pooling, 'mean', "--pooling must be avg, max or none, received 'mean'");
    refuses(parse.preprocess, 'inception', "--preprocess must be none, tf, caffe or torch, received 'inception'");
  });

  it('shard, recurrent head and units', () => {
    expect(parse.shard('1/4')).toEqual({ index: 1, count: 4 });
    for (const bad of ['3/2', '0/0', 'a/b', '-1/2']) refuses(parse.shard, bad, `--shard must be i/n with 0 ≤ i < n (e.g. 0/4), received '${bad}'`);
    expect(parse.recurrentHead('gru:32')).toEqual({ kind: 'gru', units: 32 });
    for (const bad of ['gru', 'gru:0', 'rnn:5']) refuses(parse.recurrentHead, bad, '--recurrent must be gru:UNITS or lstm:UNITS');
    expect(parse.units('128,64')).toEqual([128, 64]);
    expect(parse.units('')).toEqual([]);
    refuses(parse.units, 'a,b', "--units must be a positive integer, received 'a'");
  });

  it('augment: key=value pairs or JSON against the pipeline’s schema, unknown keys listed', () => {
    expect(parse.augment('rescale=1/255,horizontalFlip=true')).toEqual({ rescale: 1 / 255, horizontalFlip: true });
    refuses(parse.augment, 'shearRange=0.2,horizontalFlp=true', 'unknown key: horizontalFlp; known: rotationRange');
    refuses(parse.augment, '{bad json', '--augment: not valid JSON');
  });
});

describe('run flags, made from the pipeline schema', () => {
  const program = () => runFlags(new Command('run').exitOverride().configureOutput({ writeErr: () => {} }));
  const parsed = (...argv: string[]) => program().parse(argv, { from: 'user' }).opts();
  const refusal = (argv: string[]) => {
    try {
      program().parse(argv, { from: 'user' });
    } catch (error) {
      return (error as Error).message;
    }
    return 'accepted';
  };

  it('has a flag for every run option, with its help and default from the schema', () => {
    // --no-cache is a second spelling of --cache off: one attribute.
    const flags = [...new Set(program().options.map((o) => o.attributeName()))];
    expect(flags.sort()).toEqual(Object.keys(runConfigSchema.shape).sort());
    const batch = program().options.find((o) => o.long === '--batch-size')!;
    expect(batch.description).toBe(runOptionHelp('batchSize'));
    expect(batch.defaultValue).toBe(RUN_DEFAULTS.batchSize);
    expect(program().options.find((o) => o.long === '--no-cache')).toBeDefined();
  });

  it('reads values as the schema types them and refuses what the schema refuses, naming the flag', () => {
    expect(parsed('--batch-size', '8', '--color-mode', 'rgb', '--engine', 'eager', '--image-size', '64x48', '--no-cache')).toMatchObject({
      batchSize: 8,
      colorMode: 'rgb',
      engine: 'eager',
      imageSize: [64, 48],
      cache: false,
    });
    expect(parsed().cache).toBe('raw');
    expect(parsed('--cache', 'jpeg:85').cache).toBe('jpeg:85');
    expect(parsed('--cache', 'off').cache).toBe('off');
    expect(refusal(['--cache', 'jpeg:0'])).toContain("--cache must be raw, png, jpeg[:Q] (Q from 1 to 100) or off, received 'jpeg:0'");
    expect(resolveRunOptions({ data: 'd', cache: false }).cache).toBe('off');
    expect(resolveRunOptions({ data: 'd', cache: true }).cache).toBe('raw');
    // The schema allows seed 0 (a non-negative integer); the flag once refused it as not positive.
    expect(parsed('--seed', '0').seed).toBe(0);
    expect(refusal(['--seed', '-1'])).toContain("--seed must be a non-negative integer, received '-1'");
    expect(refusal(['--batch-size', '2.5'])).toContain("--batch-size must be a positive integer, received '2.5'");
    expect(refusal(['--engine', 'xla'])).toContain("--engine must be graph or eager, received 'xla'");
    expect(refusal(['--precision', 'fp16'])).toContain("--precision must be float32 or mixed-bfloat16, received 'fp16'");
    expect(refusal(['--pooling', 'mean'])).toContain("--pooling must be avg, max or none, received 'mean'");
    expect(refusal(['--out', ''])).toContain('--out must not be empty');
  });

  it('lets a stage command rename an option and drop its default, keeping its values', () => {
    const command = new Command('extract').exitOverride().configureOutput({ writeErr: () => {} });
    runFlag(command, 'baseEpochs', { flag: '--epochs', help: 'epochs' });
    runFlag(command, 'pooling', { fallback: null });
    expect(command.parse([], { from: 'user' }).opts()).toEqual({ epochs: RUN_DEFAULTS.baseEpochs });
    expect(() => command.parse(['--epochs', '0'], { from: 'user' })).toThrow("--epochs must be a positive integer, received '0'");
  });
});
