/**
 * One translator per Keras layer class: Keras 2 or 3 layer config in, tfjs layer config out.
 *
 * Adding a class touches this table only. A translator returns the tfjs layers that compute the
 * Keras layer, usually one; where tfjs needs two (a keepdims pooling is tfjs's pooling followed by
 * a Reshape) the last one keeps the Keras name, so every reference to the layer still points at
 * its output, and the earlier ones are named `<name>/<suffix>`.
 */
import { asArray, asBoolean, asIndex, asNumber, asShape, asTuple, badValue, type Json, type JsonObject } from './json.js';
import { activationOf, channelsLast, constraintOf, initializerOf, type LayerContext, refuse, regularizerOf, weightParams } from './params.js';

/** A tfjs layer, before the topology gives it a name and inbound nodes. @internal */
export interface Stage {
  className: string;
  config: JsonObject;
  /** Names a stage that is not the last: `<keras name>/<suffix>`. */
  suffix?: string;
}

type Translator = (ctx: LayerContext) => Stage | Stage[];

function padding(ctx: LayerContext): 'valid' | 'same' {
  const p = ctx.config.padding ?? 'valid';
  if (p !== 'valid' && p !== 'same') return refuse(ctx, `padding ${JSON.stringify(p)} is not supported (valid or same)`);
  return p;
}

/** The keys every convolution shares. */
function convolution(ctx: LayerContext): JsonObject {
  const c = ctx.config;
  if (c.lora_rank !== undefined && c.lora_rank !== null) refuse(ctx, 'LoRA-adapted layers cannot be imported');
  return {
    kernel_size: asTuple(ctx.site, 'kernel_size', c.kernel_size, 2),
    strides: asTuple(ctx.site, 'strides', c.strides ?? 1, 2),
    padding: padding(ctx),
    data_format: channelsLast(ctx),
    dilation_rate: asTuple(ctx.site, 'dilation_rate', c.dilation_rate ?? 1, 2),
    activation: activationOf(ctx, c.activation),
    use_bias: asBoolean(ctx.site, 'use_bias', c.use_bias, true),
    activity_regularizer: regularizerOf(ctx, 'activity_regularizer'),
  };
}

function conv2d(ctx: LayerContext): Stage {
  const groups = ctx.config.groups ?? 1;
  if (groups !== 1) refuse(ctx, `groups=${JSON.stringify(groups)} (a grouped convolution) has no tfjs equivalent`);
  const filters = asIndex(ctx.site, 'filters', ctx.config.filters);
  return { className: 'Conv2D', config: { ...convolution(ctx), filters, ...weightParams(ctx, ['kernel', 'bias']) } };
}

function depthwise(ctx: LayerContext): Stage {
  const depth_multiplier = asIndex(ctx.site, 'depth_multiplier', ctx.config.depth_multiplier ?? 1);
  return { className: 'DepthwiseConv2D', config: { ...convolution(ctx), depth_multiplier, ...weightParams(ctx, ['depthwise', 'bias']) } };
}

function separable(ctx: LayerContext): Stage {
  const config = {
    ...convolution(ctx),
    filters: asIndex(ctx.site, 'filters', ctx.config.filters),
    depth_multiplier: asIndex(ctx.site, 'depth_multiplier', ctx.config.depth_multiplier ?? 1),
    ...weightParams(ctx, ['depthwise', 'pointwise', 'bias']),
  };
  return { className: 'SeparableConv2D', config };
}

function dense(ctx: LayerContext): Stage {
  const c = ctx.config;
  if (c.lora_rank !== undefined && c.lora_rank !== null) refuse(ctx, 'LoRA-adapted layers cannot be imported');
  if (c.quantization_config !== undefined && c.quantization_config !== null) refuse(ctx, 'quantized Dense layers cannot be imported');
  const config = {
    units: asIndex(ctx.site, 'units', c.units),
    activation: activationOf(ctx, c.activation),
    use_bias: asBoolean(ctx.site, 'use_bias', c.use_bias, true),
    activity_regularizer: regularizerOf(ctx, 'activity_regularizer'),
    ...weightParams(ctx, ['kernel', 'bias']),
  };
  return { className: 'Dense', config };
}

/** An axis: Keras 2 writes `axis: [3]` where Keras 3 writes `axis: -1`. */
function singleAxis(ctx: LayerContext, value: Json | undefined, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const list = Array.isArray(value) ? value : [value];
  if (list.length !== 1 || typeof list[0] !== 'number' || !Number.isInteger(list[0])) throw badValue(ctx.site, 'axis', 'one integer', value);
  return list[0];
}

function batchNormalization(ctx: LayerContext): Stage {
  const c = ctx.config;
  if (c.renorm === true) refuse(ctx, 'batch renormalization (renorm: true) has no tfjs equivalent');
  const config = {
    axis: singleAxis(ctx, c.axis, -1),
    momentum: asNumber(ctx.site, 'momentum', c.momentum, 0.99),
    epsilon: asNumber(ctx.site, 'epsilon', c.epsilon, 1e-3),
    center: asBoolean(ctx.site, 'center', c.center, true),
    scale: asBoolean(ctx.site, 'scale', c.scale, true),
    beta_initializer: initializerOf(ctx, 'beta_initializer'),
    gamma_initializer: initializerOf(ctx, 'gamma_initializer'),
    moving_mean_initializer: initializerOf(ctx, 'moving_mean_initializer'),
    moving_variance_initializer: initializerOf(ctx, 'moving_variance_initializer'),
    beta_regularizer: regularizerOf(ctx, 'beta_regularizer'),
    gamma_regularizer: regularizerOf(ctx, 'gamma_regularizer'),
    beta_constraint: constraintOf(ctx, 'beta_constraint'),
    gamma_constraint: constraintOf(ctx, 'gamma_constraint'),
  };
  return { className: 'BatchNormalization', config };
}

/**
 * Keras's ReLU with its three parameters. tfjs's ReLU has max_value only, so the general case is
 * featherstack's KerasReLU (extensions.ts); the common ones stay tfjs's own classes.
 */
function relu(ctx: LayerContext): Stage {
  const c = ctx.config;
  const maxValue = c.max_value === null || c.max_value === undefined ? null : asNumber(ctx.site, 'max_value', c.max_value);
  const slope = asNumber(ctx.site, 'negative_slope', c.negative_slope, 0);
  const threshold = asNumber(ctx.site, 'threshold', c.threshold, 0);
  if (slope === 0 && threshold === 0) return { className: 'ReLU', config: { max_value: maxValue } };
  if (maxValue === null && threshold === 0) return { className: 'LeakyReLU', config: { alpha: slope } };
  return { className: 'KerasReLU', config: { max_value: maxValue, negative_slope: slope, threshold } };
}

/** `1`, `[1, 2]` or `[[1, 2], [3, 4]]` as `[[top, bottom], [left, right]]`. */
function pairs(ctx: LayerContext, key: string): number[][] {
  const value = ctx.config[key] ?? 0;
  if (typeof value === 'number') return [asTuple(ctx.site, key, value, 2), asTuple(ctx.site, key, value, 2)];
  const list = asArray(ctx.site, key, value);
  if (list.every((v) => typeof v === 'number')) {
    const [h, w] = asTuple(ctx.site, key, list, 2) as [number, number];
    return [
      [h, h],
      [w, w],
    ];
  }
  if (list.length !== 2) throw badValue(ctx.site, key, 'two pairs', value);
  return list.map((pair) => asTuple(ctx.site, key, pair, 2));
}

function pooling(className: string): Translator {
  return (ctx) => {
    const pool_size = asTuple(ctx.site, 'pool_size', ctx.config.pool_size ?? 2, 2);
    const strides = ctx.config.strides === null || ctx.config.strides === undefined ? pool_size : asTuple(ctx.site, 'strides', ctx.config.strides, 2);
    return { className, config: { pool_size, strides, padding: padding(ctx), data_format: channelsLast(ctx) } };
  };
}

/**
 * tfjs's global pooling has no keepdims: pool, then reshape to [1, 1, C] under the Keras name. C
 * must be written out: tfjs's Reshape leaves a -1 unresolved in its static shape whenever the batch
 * dimension is unknown, and the next Conv2D or Flatten needs it. Where the file does not record
 * the input shape (Keras 2, a Keras 3 Sequential) the -1 stays, for shapes.ts to resolve.
 */
function globalPooling(className: string): Translator {
  return (ctx) => {
    const pool: Stage = { className, config: { data_format: channelsLast(ctx) } };
    if (!asBoolean(ctx.site, 'keepdims', ctx.config.keepdims, false)) return pool;
    const recorded = ctx.inputShape?.length === 4 ? ctx.inputShape[3] : undefined;
    return [
      { ...pool, suffix: KEEPDIMS_POOL },
      { className: 'Reshape', config: { target_shape: [1, 1, typeof recorded === 'number' ? recorded : -1] } },
    ];
  };
}

/** The suffix of the pooling stage of a keepdims global pooling layer. @internal */
export const KEEPDIMS_POOL = 'pool';

function rescaling(ctx: LayerContext): Stage {
  const number = (key: string, value: Json | undefined, fallback: number): Json => {
    if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number' && Number.isFinite(v))) return value;
    return asNumber(ctx.site, key, value, fallback);
  };
  return { className: 'Rescaling', config: { scale: number('scale', ctx.config.scale, 1), offset: number('offset', ctx.config.offset, 0) } };
}

/** Keras 3's Normalization: featherstack's class of that name (extensions.ts); Keras 2's had no invert. */
function normalization(ctx: LayerContext): Stage {
  const c = ctx.config;
  const axis = c.axis === null ? null : Array.isArray(c.axis) ? c.axis : [c.axis ?? -1];
  if (axis === null || !axis.every((a) => typeof a === 'number' && Number.isInteger(a)))
    throw badValue(ctx.site, 'axis', 'an integer or a list of integers', c.axis);
  const stat = (key: string): Json => {
    const v = c[key];
    if (v === undefined || v === null) return null;
    const flat = (Array.isArray(v) ? v.flat(8) : [v]) as Json[];
    if (!flat.every((x) => typeof x === 'number' && Number.isFinite(x))) throw badValue(ctx.site, key, 'finite numbers', v);
    return flat;
  };
  if ((stat('mean') === null) !== (stat('variance') === null)) refuse(ctx, 'mean and variance must be given together');
  return {
    className: 'Normalization',
    config: { axis, mean: stat('mean'), variance: stat('variance'), invert: asBoolean(ctx.site, 'invert', c.invert, false) },
  };
}

function softmax(ctx: LayerContext): Stage {
  return { className: 'Softmax', config: { axis: singleAxis(ctx, ctx.config.axis, -1) } };
}

const plain =
  (className: string, read: (ctx: LayerContext) => JsonObject = () => ({})): Translator =>
  (ctx) => ({ className, config: read(ctx) });

/** Every Keras layer class the importer loads. */
export const TRANSLATORS: Record<string, Translator> = {
  Conv2D: conv2d,
  Convolution2D: conv2d,
  DepthwiseConv2D: depthwise,
  SeparableConv2D: separable,
  Dense: dense,
  BatchNormalization: batchNormalization,
  Activation: plain('Activation', (ctx) => ({ activation: activationOf(ctx, ctx.config.activation) })),
  ReLU: relu,
  LeakyReLU: plain('LeakyReLU', (ctx) => ({ alpha: asNumber(ctx.site, 'negative_slope', ctx.config.negative_slope ?? ctx.config.alpha, 0.3) })),
  Softmax: softmax,
  ZeroPadding2D: plain('ZeroPadding2D', (ctx) => ({ padding: pairs(ctx, 'padding'), data_format: channelsLast(ctx) })),
  Cropping2D: plain('Cropping2D', (ctx) => ({ cropping: pairs(ctx, 'cropping'), data_format: channelsLast(ctx) })),
  MaxPooling2D: pooling('MaxPooling2D'),
  AveragePooling2D: pooling('AveragePooling2D'),
  GlobalAveragePooling2D: globalPooling('GlobalAveragePooling2D'),
  GlobalMaxPooling2D: globalPooling('GlobalMaxPooling2D'),
  Reshape: plain('Reshape', (ctx) => ({ target_shape: asShape(ctx.site, 'target_shape', ctx.config.target_shape) })),
  Flatten: plain('Flatten', (ctx) => ({ data_format: channelsLast(ctx) })),
  Dropout: plain('Dropout', (ctx) => ({
    rate: asNumber(ctx.site, 'rate', ctx.config.rate),
    noise_shape: ctx.config.noise_shape === null || ctx.config.noise_shape === undefined ? null : asShape(ctx.site, 'noise_shape', ctx.config.noise_shape),
    seed: ctx.config.seed === null || ctx.config.seed === undefined ? null : asIndex(ctx.site, 'seed', ctx.config.seed),
  })),
  Add: plain('Add'),
  Subtract: plain('Subtract'), // featherstack's (extensions.ts): tfjs has no Subtract layer
  Multiply: plain('Multiply'),
  Average: plain('Average'),
  Maximum: plain('Maximum'),
  Minimum: plain('Minimum'),
  Concatenate: plain('Concatenate', (ctx) => ({ axis: singleAxis(ctx, ctx.config.axis, -1) })),
  Rescaling: rescaling,
  Normalization: normalization,
};

/** Layer classes that hold Python code or a custom implementation, refused with the reason. */
export const CODE_LAYERS: Record<string, string> = {
  Lambda: 'Lambda layers hold Python code, which cannot be imported',
  TFOpLambda: 'TFOpLambda layers are TensorFlow operations recorded by tf.keras, which cannot be imported',
  SlicingOpLambda: 'SlicingOpLambda layers are TensorFlow slicing recorded by tf.keras, which cannot be imported',
};
