/**
 * Keras's `ImageDataGenerator.fit`: per-channel mean and std, and with zcaWhitening the whitening
 * matrix, streamed over the samples without augmentation. The covariance is common's, shared with
 * core's PCA of features.
 */
import { Covariance } from '@featherstack/common';
import { type AugmentSpec, resolveAugment } from '../augment.js';
import type { ImageBatch } from '../batch/batch.js';
import { invalidOption } from '../errors.js';
import type { ImageSpec } from '../image-spec.js';
import type { Normalization } from '../pool/protocol.js';
import { zcaMatrix } from '../transforms/zca.js';
import type { RunSettings } from './epoch.js';

export interface Statistics {
  mean: number[];
  std: number[];
  zca: SharedArrayBuffer | null;
}

/**
 * Statistics of the first `limit` samples in file order, in the units standardisation sees: after
 * the preprocessing function, rescale and samplewise normalisation (with `augment.keras`, on raw
 * pixels, as Keras computes them). `run` iterates one pass with the given settings.
 */
export async function fitStatistics(
  run: (settings: RunSettings) => AsyncIterable<ImageBatch>,
  image: ImageSpec,
  a: AugmentSpec,
  limit: number,
): Promise<Statistics> {
  const identity: AugmentSpec = {
    ...resolveAugment({}),
    rescale: a.keras ? 1 : a.rescale,
    preprocessingFunction: a.keras ? null : a.preprocessingFunction,
    fillMode: a.fillMode,
  };
  const normalization: Normalization = {
    samplewiseCenter: !a.keras && a.samplewiseCenter,
    samplewiseStd: !a.keras && a.samplewiseStdNormalization,
    mean: null,
    std: null,
    zca: null,
  };
  const settings: RunSettings = { augment: identity, normalization, shuffle: false, limit };
  const c = image.channels;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  let pixels = 0;
  for await (const batch of run(settings)) {
    const x = batch.images;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      sum[i % c]! += v;
      sq[i % c]! += v * v;
    }
    pixels += x.length / c;
  }
  const mean = Array.from(sum, (s) => s / pixels);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(0, s / pixels - mean[k]! ** 2)));
  if (!a.zcaWhitening) return { mean, std, zca: null };
  // Keras: the second moment of the samples after featurewise centring / std normalisation.
  const d = image.height * image.width * c;
  if (d > 4096) throw invalidOption('augment.zcaWhitening', `used with images of at most 4096 values (h·w·c); these have ${d}`, true);
  const covariance = new Covariance(d);
  const x = new Float64Array(d);
  for await (const batch of run(settings)) {
    for (let s = 0; s < batch.size; s++) {
      for (let i = 0; i < d; i++) {
        let v = batch.images[s * d + i]!;
        if (a.featurewiseCenter) v -= mean[i % c]!;
        if (a.featurewiseStdNormalization) v /= std[i % c]! + 1e-6;
        x[i] = v;
      }
      covariance.add(x);
    }
  }
  return { mean, std, zca: zcaMatrix(covariance.finish({ center: false }).matrix, d, a.zcaEpsilon) };
}
