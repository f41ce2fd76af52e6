/**
 * The parameters many layers share — dtype, activation, initializers, regularizers, constraints,
 * data format — translated from Keras 2 or Keras 3 config to the tfjs (Keras 2, snake_case) form
 * that `tf.models.modelFromJSON` reads.
 *
 * Keras 3 wraps every object as `{module, class_name, config, registered_name}` and writes the
 * dtype as a `DTypePolicy`; tfjs wants `{class_name, config}` and a dtype string.
 */
import type { ImportSite } from './errors.js';
import { ModelImportError } from './errors.js';
import { asNumber, badValue, isObject, type Json, type JsonObject, own } from './json.js';

/** What a layer translator reads: its Keras config, where it is, and which Keras wrote it. @internal */
export interface LayerContext {
  site: ImportSite & { layer: string; className: string };
  config: JsonObject;
  /** The shape of the layer's first input, where the file records it (Keras 3 does). */
  inputShape?: (number | null)[];
  /** Keras 2 and 3 disagree on `hard_sigmoid` (0.2x + 0.5 against relu6(x + 3) / 6). */
  keras: 2 | 3;
}

/** Throws the importer's refusal for this layer. @internal */
export function refuse(ctx: LayerContext, reason: string): never {
  throw new ModelImportError(ctx.site, reason);
}

/**
 * The layer's dtype: only float32 computes as Keras computed it (a float16 or mixed policy would
 * silently run in float32 here), so anything else is refused.
 * @internal
 */
export function dtypeOf(ctx: LayerContext, value: Json | undefined = ctx.config.dtype): 'float32' {
  if (value === undefined || value === null || value === 'float32') return 'float32';
  const policy = isObject(value) && isObject(value.config) ? value.config.name : undefined;
  if (policy === 'float32') return 'float32';
  return refuse(ctx, `dtype ${JSON.stringify(policy ?? value)} is not supported: featherstack imports float32 models only`);
}

const SAME_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'tanh', 'softmax', 'softplus', 'softsign', 'swish', 'mish']);

/**
 * Keras 3 activation names whose tfjs spelling differs, or that tfjs has only through
 * registerKerasExtensions. `gelu`: Keras 3 and tf.keras default to the exact (erf) form, which is
 * tfjs's `gelu`; the tanh approximation is tfjs's `gelu_new` and Keras never names it by string.
 */
const KERAS3_ACTIVATIONS: Record<string, string> = {
  silu: 'swish',
  gelu: 'gelu',
  log_softmax: 'logSoftmax',
  hard_sigmoid: 'kerasHardSigmoid',
  hard_silu: 'hardSwish',
  hard_swish: 'hardSwish',
  leaky_relu: 'leakyRelu',
};
const KERAS2_ACTIVATIONS: Record<string, string> = { gelu: 'gelu', hard_sigmoid: 'hardSigmoid', log_softmax: 'logSoftmax' };

/**
 * The tfjs class name of a Keras activation, written as tfjs reads it back (tfjs camel-cases every
 * string in a topology, so the names are given camel-cased already).
 *
 * @example
 * activationOf({ ...ctx, keras: 3 }, 'hard_silu'); // 'hardSwish'
 * @internal
 */
export function activationOf(ctx: LayerContext, value: Json | undefined): string {
  if (value === undefined || value === null) return 'linear';
  if (typeof value !== 'string') return refuse(ctx, `activation ${JSON.stringify(value)} is a custom function, which cannot be imported`);
  const mapped = SAME_ACTIVATIONS.has(value) ? value : own(ctx.keras === 3 ? KERAS3_ACTIVATIONS : KERAS2_ACTIVATIONS, value);
  if (mapped === undefined) return refuse(ctx, `activation '${value}' has no tfjs equivalent`);
  return mapped;
}

/** Refuses a layer whose data_format is channels_first: tfjs-node's CPU kernels are NHWC. @internal */
export function channelsLast(ctx: LayerContext): 'channels_last' {
  const format = ctx.config.data_format;
  if (format === undefined || format === null || format === 'channels_last') return 'channels_last';
  return refuse(ctx, `data_format ${JSON.stringify(format)} is not supported: only channels_last models can be imported`);
}

/** `{class_name, config}` of a Keras 2 or 3 serialized object, or undefined for null. */
function unwrap(ctx: LayerContext, key: string, value: Json | undefined): { name: string; config: JsonObject } | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return { name: value, config: {} };
  if (!isObject(value) || typeof value.class_name !== 'string') throw badValue(ctx.site, key, 'a serialized Keras object', value);
  return { name: value.class_name, config: isObject(value.config) ? value.config : {} };
}

const INITIALIZERS: Record<string, string> = {
  Zeros: 'Zeros',
  zeros: 'Zeros',
  Ones: 'Ones',
  ones: 'Ones',
  Constant: 'Constant',
  RandomNormal: 'RandomNormal',
  RandomUniform: 'RandomUniform',
  TruncatedNormal: 'TruncatedNormal',
  VarianceScaling: 'VarianceScaling',
  GlorotUniform: 'GlorotUniform',
  glorot_uniform: 'GlorotUniform',
  GlorotNormal: 'GlorotNormal',
  HeNormal: 'HeNormal',
  he_normal: 'HeNormal',
  HeUniform: 'HeUniform',
  LecunNormal: 'LeCunNormal',
  LecunUniform: 'LeCunUniform',
  Orthogonal: 'Orthogonal',
  Identity: 'Identity',
};
const INITIALIZER_KEYS = ['seed', 'scale', 'mode', 'distribution', 'value', 'mean', 'stddev', 'minval', 'maxval', 'gain'];

/**
 * An initializer, kept so that the model re-initialises as Keras would. One tfjs does not have is
 * replaced by tfjs's default: it only matters for re-initialising, since every weight is loaded
 * from the file.
 * @internal
 */
export function initializerOf(ctx: LayerContext, key: string): JsonObject | null {
  const object = unwrap(ctx, key, ctx.config[key]);
  const name = object === undefined ? undefined : own(INITIALIZERS, object.name);
  if (object === undefined || name === undefined) return null;
  const config: JsonObject = {};
  for (const k of INITIALIZER_KEYS) if (object.config[k] !== undefined && object.config[k] !== null) config[k] = object.config[k];
  if (config.distribution === 'untruncated_normal') config.distribution = 'normal';
  return { class_name: name, config };
}

/**
 * A weight regularizer. It changes training, so one tfjs cannot express is refused rather than
 * dropped. tfjs's L1L2 defaults a missing factor to 0.01, so both are always written.
 * @internal
 */
export function regularizerOf(ctx: LayerContext, key: string): JsonObject | null {
  const object = unwrap(ctx, key, ctx.config[key]);
  if (object === undefined) return null;
  const l1 = asNumber(ctx.site, `${key}.l1`, object.config.l1, 0);
  const l2 = asNumber(ctx.site, `${key}.l2`, object.config.l2, 0);
  if (['L1', 'L2', 'L1L2', 'l1', 'l2', 'l1_l2'].includes(object.name)) return { class_name: 'L1L2', config: { l1, l2 } };
  return refuse(ctx, `${key} ${object.name} has no tfjs equivalent`);
}

const CONSTRAINTS = new Set(['MaxNorm', 'MinMaxNorm', 'NonNeg', 'UnitNorm']);

/** A weight constraint; one tfjs does not have is refused (it changes training). @internal */
export function constraintOf(ctx: LayerContext, key: string): JsonObject | null {
  const object = unwrap(ctx, key, ctx.config[key]);
  if (object === undefined) return null;
  if (!CONSTRAINTS.has(object.name)) return refuse(ctx, `${key} ${object.name} has no tfjs equivalent`);
  return { class_name: object.name, config: object.config };
}

/** The regularizer and constraint keys of every weight a layer names, plus its initializers. @internal */
export function weightParams(ctx: LayerContext, weights: string[]): JsonObject {
  const out: JsonObject = {};
  for (const w of weights) {
    out[`${w}_initializer`] = initializerOf(ctx, `${w}_initializer`);
    out[`${w}_regularizer`] = regularizerOf(ctx, `${w}_regularizer`);
    out[`${w}_constraint`] = constraintOf(ctx, `${w}_constraint`);
  }
  return out;
}
