/**
 * The table of layer kinds the graph compiler knows, by tfjs class name. A layer whose class is not
 * here is refused by name, and the eager engine runs the model instead.
 * @internal
 */
import { Activation, ELU, LeakyReLU, ReLU, Softmax } from './activation.js';
import { BatchNormalization } from './batch-norm.js';
import { Conv2D, DepthwiseConv2D, SeparableConv2D } from './convolution.js';
import { Dense } from './dense.js';
import { Dropout, InferenceIdentity } from './dropout.js';
import type { LayerKind } from './kind.js';
import { Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract } from './merge.js';
import { AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D } from './pooling.js';
import { Normalization, Rescaling } from './rescaling.js';
import { Cropping2D, Flatten, Reshape, ZeroPadding2D } from './shape.js';

export const LAYER_KINDS: Record<string, LayerKind> = {
  Activation,
  Add,
  Average,
  AveragePooling2D,
  BatchNormalization,
  Concatenate,
  Conv2D,
  Cropping2D,
  Dense,
  DepthwiseConv2D,
  Dropout,
  ELU,
  Flatten,
  GaussianDropout: InferenceIdentity,
  GaussianNoise: InferenceIdentity,
  GlobalAveragePooling2D,
  GlobalMaxPooling2D,
  // featherstack's Keras ReLU (negative_slope, threshold), registered by the importer.
  KerasReLU: ReLU,
  LeakyReLU,
  Maximum,
  MaxPooling2D,
  Minimum,
  Multiply,
  Normalization,
  ReLU,
  Rescaling,
  Reshape,
  SeparableConv2D,
  Softmax,
  Subtract,
  ZeroPadding2D,
};

export function kindOf(className: string): LayerKind | undefined {
  return Object.hasOwn(LAYER_KINDS, className) ? LAYER_KINDS[className] : undefined;
}

export type { BackwardContext, Fold, LayerKind, Step } from './kind.js';
