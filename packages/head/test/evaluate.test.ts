import { describe, expect, it } from 'vitest';
import { metricsFromProbabilities } from '../dist/evaluate.js';

describe('evaluation metrics', () => {
  // Three classes, six samples; predictions (argmax) and truths chosen by hand.
  const probs = Float32Array.from([
    0.7,
    0.2,
    0.1, // truth 0, predicted 0
    0.1,
    0.6,
    0.3, // truth 0, predicted 1 (truth scores lowest)
    0.2,
    0.5,
    0.3, // truth 1, predicted 1
    0.3,
    0.3,
    0.4, // truth 1, predicted 2 (truth tied 2nd)
    0.1,
    0.2,
    0.7, // truth 2, predicted 2
    0.5,
    0.1,
    0.4, // truth 2, predicted 0 (truth 2nd)
  ]);
  const labels = [0, 0, 1, 1, 2, 2];
  const report = metricsFromProbabilities(probs, labels, ['a', 'b', 'c'], [1, 2]);

  it('counts the confusion matrix with true classes as rows', () => {
    expect(report.confusion).toEqual([
      [1, 1, 0],
      [0, 1, 1],
      [1, 0, 1],
    ]);
    expect(report.accuracy).toBeCloseTo(3 / 6, 10);
  });

  it('computes top-k accuracy from the rank of the true class', () => {
    // Top-2 misses only sample 1 (its truth scores lowest).
    expect(report.topK).toEqual({ '1': 0.5, '2': 5 / 6 });
  });

  it('derives per-class precision, recall, F1 and support, and macro averages', () => {
    expect(report.perClass.map((m) => m.support)).toEqual([2, 2, 2]);
    for (const m of report.perClass) {
      expect(m.precision).toBeCloseTo(0.5, 10);
      expect(m.recall).toBeCloseTo(0.5, 10);
      expect(m.f1).toBeCloseTo(0.5, 10);
    }
    expect(report.macro.f1).toBeCloseTo(0.5, 10);
  });

  it('names the bad argument', () => {
    expect(() => metricsFromProbabilities(probs, [0, 0, 1], ['a', 'b', 'c'])).toThrow(/probabilities must be 3 × 3 values/);
    expect(() => metricsFromProbabilities(probs, [0, 0, 1, 1, 2, 7], ['a', 'b', 'c'])).toThrow(/labels\[5\] must be a class index in \[0, 3\)/);
  });
});
