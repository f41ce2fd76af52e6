/**
 * ZCA whitening (Keras's `zca_whitening`): W = U · diag(1 / sqrt(λ + ε)) · Uᵀ from the
 * eigendecomposition of the samples' covariance. The covariance is symmetric, so its SVD is its
 * eigendecomposition; cyclic Jacobi rotations compute it without a linear-algebra dependency —
 * fine for the small images whitening is used with (D = h·w·c; O(D³) per sweep).
 * @internal
 */

/** Eigenvalues and eigenvectors (columns of `vectors`, row-major n×n) of the symmetric matrix `a`. */
export function symmetricEigen(input: Float64Array, n: number, tolerance = 1e-12, maxSweeps = 60): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i]! * a[i]!;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off <= tolerance * tolerance * scale) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ A J on rows/columns p and q; V ← V J.
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

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
