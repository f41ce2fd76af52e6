/**
 * Per-pixel colour augmentations, applied after the affine warp in Keras's order: channel shift,
 * then brightness.
 * @internal
 */

/** The smallest and largest value of one image. */
function extent(dst: Float32Array | Uint8ClampedArray, offset: number, size: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = offset; i < offset + size; i++) {
    const v = dst[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export function channelShift(dst: Float32Array | Uint8ClampedArray, offset: number, size: number, shift: number): void {
  // Keras: clip(x + intensity, min(x), max(x)) over the whole image.
  const [lo, hi] = extent(dst, offset, size);
  for (let i = offset; i < offset + size; i++) dst[i] = Math.min(hi, Math.max(lo, dst[i]! + shift));
}

/** Brightness by exact multiplication, clipped to 0–255 (featherstack's default). */
export function brightness(dst: Float32Array | Uint8ClampedArray, offset: number, size: number, factor: number): void {
  for (let i = offset; i < offset + size; i++) dst[i] = Math.min(255, Math.max(0, dst[i]! * factor));
}

/**
 * Keras's apply_brightness_shift, exactly: array_to_img casts the float image to uint8 (truncating;
 * min-max scaled first when values leave 0–255), PIL's ImageEnhance.Brightness blends with black
 * in float32 (`(UINT8)(factor · v)`, clipped when factor > 1), and img_to_array brings it back (then
 * unscaled). Values come out whole, as in Keras. An RGBA image's alpha is kept (PIL blends alpha
 * with itself), truncated by the same uint8 cast.
 */
export function kerasBrightness(dst: Float32Array | Uint8ClampedArray, offset: number, size: number, factor: number, channels: number): void {
  const f = Math.fround(factor);
  const alpha = (i: number) => channels === 4 && (i - offset) % 4 === 3;
  const blend = (v: number) => {
    const t = Math.fround(f * v);
    if (f >= 0 && f <= 1) return Math.trunc(t);
    return t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  };
  const [lo, hi] = extent(dst, offset, size);
  if (lo >= 0 && hi <= 255) {
    for (let i = offset; i < offset + size; i++) dst[i] = alpha(i) ? Math.trunc(dst[i]!) : blend(Math.trunc(dst[i]!));
    return;
  }
  const span = Math.fround(hi - lo);
  for (let i = offset; i < offset + size; i++) {
    let v = Math.fround(dst[i]! - lo);
    if (span !== 0) v = Math.fround(v / span);
    v = Math.trunc(Math.fround(v * 255));
    if (!alpha(i)) v = blend(v);
    dst[i] = Math.fround(Math.fround(Math.fround(v / 255) * span) + lo);
  }
}
