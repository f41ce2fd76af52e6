/**
 * Keras's `imagenet_utils.preprocess_input` modes, applied where Keras's ImageDataGenerator applies a
 * `preprocessing_function` (on 0–255 pixels, before rescale), bit for bit: each step is one float32
 * operation, as numpy runs `x /= 127.5; x -= 1` on a float32 array (every intermediate is rounded
 * with Math.fround; for + − × ÷ of float32 operands, double-then-float rounding is exact).
 *
 * - 'tf': x / 127.5 − 1 (MobileNet, MobileNetV2, Inception, Xception, NASNet);
 * - 'torch': x / 255, then (x − mean) / std per channel with ImageNet's RGB statistics (DenseNet);
 * - 'caffe': RGB → BGR, then minus ImageNet's BGR mean (ResNet, VGG);
 * - 'none': the pixels as they are (EfficientNet and MobileNetV3 preprocess inside the model).
 */
export const PREPROCESS_MODES = ['none', 'tf', 'caffe', 'torch'] as const;
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

const f = Math.fround;
const TORCH_MEAN = [0.485, 0.456, 0.406].map(f);
const TORCH_STD = [0.229, 0.224, 0.225].map(f);
const CAFFE_MEAN = [103.939, 116.779, 123.68].map(f);

/** Applies `mode` in place to one image of `channels` interleaved channels. */
export function preprocessInput(x: Float32Array, channels: number, mode: PreprocessMode): void {
  if (mode === 'none') return;
  if (mode === 'tf') {
    for (let i = 0; i < x.length; i++) x[i] = f(f(x[i]! / 127.5) - 1);
    return;
  }
  if (channels !== 3) throw new Error(`preprocess '${mode}' needs 3-channel (rgb) images, not ${channels} channels`);
  if (mode === 'torch') {
    for (let i = 0; i < x.length; i += 3) for (let c = 0; c < 3; c++) x[i + c] = f(f(f(x[i + c]! / 255) - TORCH_MEAN[c]!) / TORCH_STD[c]!);
    return;
  }
  for (let i = 0; i < x.length; i += 3) {
    const r = x[i]!;
    x[i] = f(x[i + 2]! - CAFFE_MEAN[0]!);
    x[i + 1] = f(x[i + 1]! - CAFFE_MEAN[1]!);
    x[i + 2] = f(r - CAFFE_MEAN[2]!);
  }
}
