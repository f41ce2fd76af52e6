/**
 * Keras's affine augmentation matrix (keras/src/legacy/preprocessing/image.py,
 * apply_affine_transform): rotation · shift · shear · zoom about the image centre, mapping an output
 * pixel to the input coordinate it samples (scipy.ndimage.affine_transform semantics).
 *
 * Keras builds the matrix in (x, y) = (column, row) coordinates and conjugates it with the axis
 * swap, so its `tx` — drawn from height_shift_range and scaled by the image height — moves the
 * image along columns, and its pivot is (h/2 - 0.5, w/2 - 0.5) on the (column, row) axes: the
 * height and width are swapped, which moves the pivot off-centre on non-square images. Those are
 * defects: `keras: true` reproduces them exactly; by default height shifts move rows, width shifts
 * move columns, and the pivot is the true pixel centre ((w-1)/2, (h-1)/2).
 * @internal
 */

/** A 2×3 matrix [a, b, c, d, e, f]: in_row = a·r + b·col + c, in_col = d·r + e·col + f. */
export type Affine = Float64Array;

export interface AffineParams {
  /** Rotation in degrees. */
  theta: number;
  /** Shift drawn from heightShiftRange, pixels (Keras's `tx`). */
  heightShift: number;
  /** Shift drawn from widthShiftRange, pixels (Keras's `ty`). */
  widthShift: number;
  /** Shear in degrees. */
  shear: number;
  /** Zoom on the x (column) axis (Keras's `zx`). */
  zx: number;
  /** Zoom on the y (row) axis (Keras's `zy`). */
  zy: number;
}

type M3 = number[];

function mul(a: M3, b: M3): M3 {
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      out[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
    }
  }
  return out;
}

/** Whether the parameters leave the image unchanged (Keras then skips the warp). */
export function isIdentity(p: AffineParams): boolean {
  return p.theta === 0 && p.heightShift === 0 && p.widthShift === 0 && p.shear === 0 && p.zx === 1 && p.zy === 1;
}

/**
 * The sampling matrix for an image of `height`×`width`, or undefined for the identity.
 *
 * @example
 * const m = kerasAffine({ theta: 0, heightShift: 0, widthShift: 0, shear: 0, zx: 2, zy: 2 }, 8, 8);
 */
export function kerasAffine(p: AffineParams, height: number, width: number, keras = false): Affine | undefined {
  if (isIdentity(p)) return undefined;
  // Shifts on the (x, y) = (column, row) axes.
  const [sx, sy] = keras ? [p.heightShift, p.widthShift] : [p.widthShift, p.heightShift];
  let m: M3 | undefined;
  if (p.theta !== 0) {
    const t = (p.theta * Math.PI) / 180;
    m = [Math.cos(t), -Math.sin(t), 0, Math.sin(t), Math.cos(t), 0, 0, 0, 1];
  }
  if (sx !== 0 || sy !== 0) {
    const s = [1, 0, sx, 0, 1, sy, 0, 0, 1];
    m = m ? mul(m, s) : s;
  }
  if (p.shear !== 0) {
    const sh = (p.shear * Math.PI) / 180;
    const s = [1, -Math.sin(sh), 0, 0, Math.cos(sh), 0, 0, 0, 1];
    m = m ? mul(m, s) : s;
  }
  if (p.zx !== 1 || p.zy !== 1) {
    const z = [p.zx, 0, 0, 0, p.zy, 0, 0, 0, 1];
    m = m ? mul(m, z) : z;
  }
  m ??= [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const cx = keras ? height / 2 - 0.5 : (width - 1) / 2;
  const cy = keras ? width / 2 - 0.5 : (height - 1) / 2;
  const c = mul(mul([1, 0, cx, 0, 1, cy, 0, 0, 1], m), [1, 0, -cx, 0, 1, -cy, 0, 0, 1]);
  // in_x = c0·x + c1·y + c2, in_y = c3·x + c4·y + c5 with x = col, y = row; reorder to (row, col).
  return Float64Array.of(c[4]!, c[3]!, c[5]!, c[1]!, c[0]!, c[2]!);
}
