import { describe, expect, it } from 'vitest';
import { Covariance, symmetricEigen } from '../dist/index.js';

describe('symmetric eigendecomposition (Jacobi)', () => {
  it('recovers A = V·diag(λ)·Vᵀ with orthonormal V', () => {
    const n = 6;
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = Math.sin(i * 7 + j * 3) + (i === j ? 3 : 0);
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let rebuilt = 0;
        let dot = 0;
        for (let k = 0; k < n; k++) {
          rebuilt += vectors[i * n + k]! * values[k]! * vectors[j * n + k]!;
          dot += vectors[k * n + i]! * vectors[k * n + j]!;
        }
        expect(rebuilt).toBeCloseTo(a[i * n + j]!, 10);
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
  });

  it('Covariance streams the second moment (ZCA) or the covariance about the mean (PCA) of rows', () => {
    const rows = [
      [1, 2, 0],
      [3, -1, 2],
      [0, 0, 5],
      [2, 2, 2],
    ];
    const c = new Covariance(3);
    for (const r of rows) c.add(Float64Array.from([9, ...r]), 1);
    expect(c.count).toBe(4);
    const mean = [0, 1, 2].map((i) => rows.reduce((s, r) => s + r[i]!, 0) / 4);
    const raw = c.finish({ center: false });
    const centred = c.finish({ center: true });
    expect(Array.from(raw.mean)).toEqual(mean);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const second = rows.reduce((s, r) => s + r[i]! * r[j]!, 0) / 4;
        expect(raw.matrix[i * 3 + j]).toBeCloseTo(second, 12);
        expect(centred.matrix[i * 3 + j]).toBeCloseTo(second - mean[i]! * mean[j]!, 12);
      }
    }
  });
});
