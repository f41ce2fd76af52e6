// Keras's preprocess_input modes, bit for bit against Keras 3 (benchmarks/golden/keras_preprocess.py),
// both as the transform and through a flow's workers; bad modes refused by name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flowFromArray, type PreprocessMode, preprocessInput } from '../dist/index.js';

const golden = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'keras-preprocess.json'), 'utf8')) as {
  cases: { mode: PreprocessMode; shape: [number, number, number]; input: number[]; output: number[] }[];
};
const floats = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);

describe("Keras's preprocess_input modes", () => {
  it('equal Keras bit for bit on integer, fractional and out-of-range pixels in every mode', () => {
    expect(golden.cases.length).toBe(12);
    for (const c of golden.cases) {
      const x = floats(c.input);
      preprocessInput(x, c.shape[2], c.mode);
      const got = new Uint32Array(x.buffer);
      const mismatches = [...got].filter((b, i) => b !== c.output[i]).length;
      expect({ mode: c.mode, mismatches }).toEqual({ mode: c.mode, mismatches: 0 });
    }
  });

  it('run in the decode workers as preprocessing_function runs in ImageDataGenerator (before rescale)', async () => {
    const c = golden.cases.find((k) => k.mode === 'caffe' && k.shape[0] === 5)!;
    const pixels = Uint8Array.from(floats(c.input));
    const [h, w] = c.shape;
    const flow = flowFromArray({ data: pixels, shape: [1, h, w, 3] }, { batchSize: 1, shuffle: false, workers: 1, augment: { preprocess: 'caffe' } });
    try {
      for await (const batch of flow.epoch(0)) expect([...new Uint32Array((batch.images as Float32Array).slice().buffer)]).toEqual(c.output);
    } finally {
      await flow.close();
    }
  });

  it('refuse an unknown mode, and caffe or torch on images without three channels, by option name', () => {
    const gray = { data: new Uint8Array(16), shape: [1, 4, 4, 1] as [number, number, number, number] };
    expect(() => flowFromArray(gray, { augment: { preprocess: 'inception' as never } })).toThrow(
      `options.augment.preprocess must be one of 'none', 'tf', 'caffe', 'torch', received "inception"`,
    );
    expect(() => flowFromArray(gray, { augment: { preprocess: 'caffe' } })).toThrow(
      `options.augment.preprocess must be 'tf' or 'none' for 1-channel images ('caffe' needs rgb), received "caffe"`,
    );
  });
});
