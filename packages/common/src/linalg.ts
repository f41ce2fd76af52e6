/**
 * The small linear algebra featherstack needs without a dependency: a streamed covariance (ZCA
 * whitening of images, PCA of features) and the eigendecomposition of a symmetric matrix.
 */

/**
 * Accumulates the second moments of d-dimensional rows, one row at a time, in double precision:
 * `finish({ center: true })` gives the covariance about the mean (PCA), `center: false` the raw
 * second moment xᵀx / n (Keras's ZCA, whose rows are already centred by the featurewise mean).
 */
export class Covariance {
  private readonly sum: Float64Array;
  private readonly outer: Float64Array;
  private rows = 0;

  constructor(readonly d: number) {
    this.sum = new Float64Array(d);
    this.outer = new Float64Array(d * d);
  }

  /** Adds the row of `d` values starting at `x[offset]`. */
  add(x: ArrayLike<number>, offset = 0): void {
    const { d, sum, outer } = this;
    for (let i = 0; i < d; i++) {
      const xi = x[offset + i]!;
      sum[i]! += xi;
      if (xi === 0) continue;
      const row = i * d;
      for (let j = i; j < d; j++) outer[row + j]! += xi * x[offset + j]!;
    }
    this.rows++;
  }

  get count(): number {
    return this.rows;
  }

  /** The mean and the full symmetric d×d matrix (row-major). */
  finish(options: { center: boolean }): { mean: Float64Array; matrix: Float64Array } {
    const { d, rows } = this;
    const mean = Float64Array.from(this.sum, (s) => s / rows);
    const matrix = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const c = this.outer[i * d + j]! / rows - (options.center ? mean[i]! * mean[j]! : 0);
        matrix[i * d + j] = c;
        matrix[j * d + i] = c;
      }
    }
    return { mean, matrix };
  }
}

/**
 * Eigenvalues and eigenvectors (columns of `vectors`, row-major n×n) of the symmetric matrix
 * `input`, by cyclic Jacobi rotations: O(n³) per sweep, fine for the sizes used here (n ≤ 4096).
 */
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
