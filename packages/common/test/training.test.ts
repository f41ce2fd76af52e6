import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BestEpoch, CsvLog, classWeights, LearningRates, type Monitor, OptionError } from '../dist/index.js';

// Keras's own decisions, written by benchmarks/golden/keras_controls.py (committed).
const golden = JSON.parse(readFileSync(new URL('./fixtures/keras-controls.json', import.meta.url), 'utf8')) as {
  plateaus: { name: string; monitor: Monitor; learningRate: number; options: Record<string, number>; scores: number[]; rates: number[] }[];
  cosine: { learningRate: number; steps: number; alpha: number; rates: number[] }[];
  step: { learningRate: number; every: number; factor: number; rates: number[] }[];
};

const scores = (monitor: Monitor, value: number) =>
  monitor === 'val_acc' ? { loss: 1, acc: 0, valLoss: 1, valAcc: value } : { loss: 1, acc: 0, valLoss: value, valAcc: 0 };

describe('training controls against Keras', () => {
  for (const c of golden.plateaus) {
    it(`ReduceLROnPlateau: ${c.name}`, () => {
      const o = c.options;
      const rates = new LearningRates(c.learningRate, c.scores.length, {
        reduceOnPlateau: {
          monitor: c.monitor,
          ...(o.factor !== undefined ? { factor: o.factor } : {}),
          ...(o.patience !== undefined ? { patience: o.patience } : {}),
          ...(o.min_delta !== undefined ? { minDelta: o.min_delta } : {}),
          ...(o.cooldown !== undefined ? { cooldown: o.cooldown } : {}),
          ...(o.min_lr !== undefined ? { minLearningRate: o.min_lr } : {}),
        },
      });
      const ours: number[] = [];
      c.scores.forEach((s, e) => {
        const rate = rates.rateFor(e);
        ours.push(rate);
        rates.endEpoch(scores(c.monitor, s), rate);
      });
      // Keras keeps the rate as a float32 variable: equal to float32 precision, reductions on the same epochs.
      expect(ours.length).toBe(c.rates.length);
      for (const [e, r] of ours.entries()) expect(Math.abs(r - c.rates[e]!) / c.rates[e]!, `epoch ${e}`).toBeLessThan(1e-6);
      const reductions = (list: number[]) => list.flatMap((r, e) => (e > 0 && r < list[e - 1]! * 0.999 ? [e] : []));
      expect(reductions(ours)).toEqual(reductions(c.rates));
    });
  }

  it('the golden cases do reduce (a mutation that never reduces fails)', () => {
    expect(golden.plateaus.filter((c) => c.rates.at(-1)! < c.learningRate).length).toBeGreaterThanOrEqual(4);
  });

  it('cosine decays as CosineDecay(decay_steps = epochs, alpha = minLearningRate / learningRate)', () => {
    for (const c of golden.cosine) {
      const rates = new LearningRates(c.learningRate, c.steps, { schedule: { kind: 'cosine', minLearningRate: c.alpha * c.learningRate } });
      for (const [t, expected] of c.rates.entries()) expect(Math.abs(rates.rateFor(t) - expected)).toBeLessThan(1e-7 * c.learningRate + 1e-12);
    }
  });

  it('step decays as ExponentialDecay with staircase', () => {
    for (const c of golden.step) {
      const rates = new LearningRates(c.learningRate, 12, { schedule: { kind: 'step', every: c.every, factor: c.factor } });
      for (const [t, expected] of c.rates.entries()) expect(Math.abs(rates.rateFor(t) - expected) / expected).toBeLessThan(1e-6);
    }
  });
});

describe('training controls', () => {
  it('warms up linearly to the base rate, then follows the schedule over the remaining epochs', () => {
    const rates = new LearningRates(1e-3, 6, { warmupEpochs: 2, schedule: { kind: 'cosine' } });
    expect([0, 1, 2].map((e) => rates.rateFor(e))).toEqual([5e-4, 1e-3, 1e-3]);
    expect(rates.rateFor(4)).toBeCloseTo(5e-4, 12); // halfway through the 4 epochs after warm-up
    expect(rates.rateFor(6)).toBeCloseTo(0, 12);
  });

  it('a replayed history restores the plateau state exactly', () => {
    const history = [0.9, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85].map((v) => ({ loss: 1, acc: 0, valLoss: v, valAcc: 0 }));
    const controls = { reduceOnPlateau: { patience: 2, factor: 0.5 } };
    const whole = new LearningRates(1e-3, 10, controls);
    const logged = history.map((h, e) => {
      const lr = whole.rateFor(e);
      whole.endEpoch(h, lr);
      return { ...h, lr };
    });
    const resumed = new LearningRates(1e-3, 10, controls);
    resumed.replay(logged.slice(0, 5));
    for (let e = 5; e < 7; e++) resumed.endEpoch(logged[e]!, resumed.rateFor(e));
    expect(resumed.rateFor(7)).toBe(whole.rateFor(7));
    expect(whole.rateFor(7)).toBeLessThan(1e-3);
  });

  it('best-only tracking: strictly better counts, accuracies upward', () => {
    const loss = new BestEpoch('val_loss');
    expect([0.5, 0.4, 0.4, 0.45, 0.3].map((v, e) => loss.offer(e, { loss: 0, acc: 0, valLoss: v }))).toEqual([true, true, false, false, true]);
    expect(loss.epoch).toBe(4);
    const acc = new BestEpoch('val_acc');
    expect([0.5, 0.7, 0.6].map((v, e) => acc.offer(e, { loss: 0, acc: 0, valAcc: v }))).toEqual([true, true, false]);
    expect(acc.value).toBe(0.7);
    expect(() => loss.offer(5, { loss: 0, acc: 0 })).toThrow('options.bestMonitor must be a score the epochs have (val_loss needs validation data)');
  });

  it('refuses bad controls by option name', () => {
    const bad: [unknown, string][] = [
      [{ schedule: { kind: 'linear' } }, "options.schedule must be { kind: 'constant' | 'step' | 'cosine', … }"],
      [{ schedule: { kind: 'step', every: 0, factor: 0.5 } }, "options.schedule must be { kind: 'step', every: a positive integer"],
      [{ warmupEpochs: -1 }, 'options.warmupEpochs must be a non-negative integer, received -1'],
      [{ reduceOnPlateau: { factor: 1 } }, 'options.reduceOnPlateau.factor must be a number in (0, 1), received 1'],
      [{ reduceOnPlateau: { monitor: 'val_f1' } }, 'options.reduceOnPlateau.monitor must be one of loss, acc, val_loss, val_acc'],
      [{ bestMonitor: 'accuracy' }, 'options.bestMonitor must be one of'],
    ];
    for (const [controls, message] of bad) {
      expect(() => new LearningRates(1e-3, 5, controls as never)).toThrow(OptionError);
      expect(() => new LearningRates(1e-3, 5, controls as never)).toThrow(message);
    }
  });

  it('the CSV log has a header and a row per epoch, and a resume keeps only the epochs it resumes', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fs-csv-')), 'logs', 'training.csv');
    const log = new CsvLog(file, 0);
    for (let e = 0; e < 3; e++) log.write(e, { loss: 1 - e / 10, acc: e / 10, valLoss: 2, valAcc: Number.NaN }, 1e-3);
    expect(readFileSync(file, 'utf8')).toBe('epoch,loss,acc,val_loss,val_acc,lr\n0,1,0,2,,0.001\n1,0.9,0.1,2,,0.001\n2,0.8,0.2,2,,0.001\n');
    const resumed = new CsvLog(file, 2); // the checkpoint held 2 epochs: the third row goes
    resumed.write(2, { loss: 0.7, acc: 0.3 }, 5e-4);
    expect(readFileSync(file, 'utf8').split('\n').slice(1, 4)).toEqual(['0,1,0,2,,0.001', '1,0.9,0.1,2,,0.001', '2,0.7,0.3,,,0.0005']);
  });

  it("class weights: 'balanced' as scikit-learn computes it, or by class name or index; bad keys and weights refused by name", () => {
    // compute_class_weight('balanced') on 90 cats and 10 dogs: 100 / (2 · 90) and 100 / (2 · 10).
    const labels = (...counts: number[]) => counts.flatMap((n, c) => Array<number>(n).fill(c));
    expect(Array.from(classWeights('balanced', ['cat', 'dog'], labels(90, 10)))).toEqual([Math.fround(100 / 180), 5]);
    expect(Array.from(classWeights({ dog: 3, 0: 0.5 }, ['cat', 'dog', 'eel'], labels(1, 1, 1)))).toEqual([0.5, 3, 1]);
    expect(() => classWeights({ cow: 2 }, ['cat', 'dog'], labels(1, 1))).toThrow(
      'options.classWeight.cow must be a class of the training data (cat, dog) or its index below 2',
    );
    expect(() => classWeights({ dog: -1 }, ['cat', 'dog'], labels(1, 1))).toThrow('options.classWeight.dog must be a positive number, received -1');
    expect(() => classWeights('balanced', ['cat', 'dog'], labels(5, 0))).toThrow('class "dog" has none');
  });
});
