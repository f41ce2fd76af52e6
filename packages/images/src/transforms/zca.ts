/**
 * ZCA whitening (Keras's `zca_whitening`): W = U · diag(1 / sqrt(λ + ε)) · Uᵀ from the
 * eigendecomposition of the samples' covariance. The covariance is symmetric, so its SVD is its
 * eigendecomposition; cyclic Jacobi rotations compute it without a linear-algebra dependency —
 * fine for the small images whitening is used with (D = h·w·c; O(D³) per sweep).
 * @internal
 */
import { symmetricEigen } from '@featherstack/common';

/** The whitening matrix for covariance `sigma` (n×n), as float32 in shared memory for the workers. */
export function zcaMatrix(sigma: Float64Array, n: number, epsilon: number): SharedArrayBuffer {
  const { values, vectors } = symmetricEigen(sigma, n);
  const inv = Array.from(values, (l) => 1 / Math.sqrt(Math.max(l, 0) + epsilon));
  const out = new SharedArrayBuffer(n * n * 4);
  const w = new Float32Array(out);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < n; k++) sum += vectors[i * n + k]! * inv[k]! * vectors[j * n + k]!;
      w[i * n + j] = sum;
      w[j * n + i] = sum;
    }
  }
  return out;
}

/** x ← x · W (W symmetric), using `scratch` (length n). */
export function whiten(x: Float32Array, w: Float32Array, scratch: Float64Array): void {
  const n = x.length;
  scratch.fill(0);
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) scratch[j] = scratch[j]! + xi * w[row + j]!;
  }
  for (let j = 0; j < n; j++) x[j] = scratch[j]!;
}
