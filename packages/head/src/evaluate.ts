/**
 * Evaluation of a classifier's predictions: accuracy, top-k accuracy, per-class precision / recall
 * / F1 with support, macro averages and the confusion matrix (rows: true class, columns:
 * predicted), as plain JSON-ready data.
 */
import type { LayersModel, Tensor, Tf } from '@featherstack/tensorflow';
import { invalidOption } from './errors.js';
import type { FeatureSet } from './features.js';

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Samples whose true class this is. */
  support: number;
}

export interface Evaluation {
  samples: number;
  accuracy: number;
  /** k → top-k accuracy. */
  topK: Record<string, number>;
  perClass: ClassMetrics[];
  macro: { precision: number; recall: number; f1: number };
  /** confusion[t][p]: samples of true class t predicted as p. */
  confusion: number[][];
}

/**
 * Metrics from class probabilities (`probabilities`: samples × classes, row-major) and true class
 * indices. Classes without predictions get precision 0; without samples, recall 0.
 *
 * @example
 * const report = metricsFromProbabilities(probs, labels, ['cat', 'dog'], [1, 2]);
 */
export function metricsFromProbabilities(probabilities: Float32Array, labels: ArrayLike<number>, classNames: string[], topK: number[] = [1, 5]): Evaluation {
  const n = labels.length;
  const c = classNames.length;
  if (n === 0) throw invalidOption('labels', 'at least one sample', 0);
  if (probabilities.length !== n * c) throw invalidOption('probabilities', `${n} × ${c} values`, `${probabilities.length} values`);
  const confusion = Array.from({ length: c }, () => new Array<number>(c).fill(0));
  const hits = new Map(topK.filter((k) => k >= 1).map((k) => [Math.min(k, c), 0]));
  for (let i = 0; i < n; i++) {
    const truth = labels[i]!;
    if (!Number.isInteger(truth) || truth < 0 || truth >= c) throw invalidOption(`labels[${i}]`, `a class index in [0, ${c})`, truth);
    const row = probabilities.subarray(i * c, (i + 1) * c);
    let best = 0;
    for (let j = 1; j < c; j++) if (row[j]! > row[best]!) best = j;
    confusion[truth]![best]!++;
    // Rank of the true class: how many classes score strictly higher (ties favour the truth).
    let rank = 0;
    for (let j = 0; j < c; j++) if (row[j]! > row[truth]!) rank++;
    for (const k of hits.keys()) if (rank < k) hits.set(k, hits.get(k)! + 1);
  }
  const perClass = classNames.map((name, k) => {
    const tp = confusion[k]![k]!;
    const predicted = confusion.reduce((s, row) => s + row[k]!, 0);
    const support = confusion[k]!.reduce((s, v) => s + v, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    return { name, precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, support };
  });
  const mean = (key: 'precision' | 'recall' | 'f1') => perClass.reduce((s, m) => s + m[key], 0) / c;
  const correct = confusion.reduce((s, row, k) => s + row[k]!, 0);
  return {
    samples: n,
    accuracy: correct / n,
    topK: Object.fromEntries([...hits].map(([k, h]) => [String(k), h / n])),
    perClass,
    macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') },
    confusion,
  };
}

/**
 * Runs `model` (a head) over a feature set and evaluates its predictions.
 *
 * @example
 * const report = await evaluateHead(tf, head.model, await readFeatureFile('val.arrow'));
 * await writeFile('evaluation.json', JSON.stringify(report, null, 2));
 */
export async function evaluateHead(tf: Tf, model: LayersModel, set: FeatureSet, options: { topK?: number[]; batchSize?: number } = {}): Promise<Evaluation> {
  const batchSize = options.batchSize ?? 1024;
  const classes = (model.outputs[0]!.shape[1] as number) ?? set.classNames.length;
  const probabilities = new Float32Array(set.rows * classes);
  for (let start = 0; start < set.rows; start += batchSize) {
    const rows = Math.min(batchSize, set.rows - start);
    const out = tf.tidy(
      () => model.predict(tf.tensor2d(set.features.subarray(start * set.dimension, (start + rows) * set.dimension), [rows, set.dimension])) as Tensor,
    );
    probabilities.set((await out.data()) as Float32Array, start * classes);
    out.dispose();
  }
  const names = set.classNames.length === classes ? set.classNames : Array.from({ length: classes }, (_, i) => set.classNames[i] ?? String(i));
  return metricsFromProbabilities(probabilities, set.labels, names, options.topK ?? [1, 5]);
}
