/**
 * Keras 3 activations and layers that tfjs lacks, or has with another meaning, registered as tfjs
 * classes so that imported models deserialise, predict and train in tfjs. The graph compiler
 * implements the same class names natively; these are the eager reference.
 *
 * Activations (tfjs looks them up by class name in its serialization registry, so both
 * `tf.layers.activation({activation: 'hardSwish'})` and a saved topology find them):
 * - `kerasHardSigmoid`: Keras 3's hard_sigmoid, relu6(x + 3) / 6. Not tfjs's `hardSigmoid`, which is
 *   Keras 2's 0.2x + 0.5 clipped (they differ by up to 0.033 near |x| = 2.5).
 * - `hardSwish`: Keras 3's hard_silu / hard_swish, x * relu6(x + 3) / 6.
 * - `leakyRelu`: Keras 3's leaky_relu activation, slope 0.2 (the LeakyReLU layer is tfjs's own).
 *
 * Layers:
 * - `Normalization`: (x - mean) / max(sqrt(variance), 1e-7), or its inverse; mean and variance from
 *   the config, or weights `mean` and `variance` (Keras's adapted state).
 * - `KerasReLU`: Keras's ReLU with negative_slope and threshold as well as max_value.
 * - `Subtract`: Keras's two-input Subtract merge layer, which tfjs does not have.
 *
 * And one repair: tfjs 4.22's SeparableConv2D leaves depth_multiplier out of its config, so a
 * model saved as model.json comes back with multiplier 1 and its weights no longer fit. The class
 * registered under that name from here on writes it.
 */
import type { Tensor, Tf } from '@featherstack/tensorflow';

type Layer = InstanceType<Tf['layers']['Layer']>;
type LayerArgs = ConstructorParameters<Tf['layers']['Layer']>[0];
type Shape = (number | null)[];

/** Keras's backend.epsilon(): the floor of Normalization's standard deviation. */
const EPSILON = 1e-7;
const registered = new WeakSet<object>();

function activations(tf: Tf) {
  const hardSigmoid = (x: Tensor) => tf.div(tf.relu6(tf.add(x, 3)), 6);
  class KerasHardSigmoid extends tf.serialization.Serializable {
    static readonly className = 'kerasHardSigmoid';
    apply(x: Tensor): Tensor {
      return tf.tidy(() => hardSigmoid(x));
    }
    getConfig() {
      return {};
    }
  }
  class HardSwish extends tf.serialization.Serializable {
    static readonly className = 'hardSwish';
    apply(x: Tensor): Tensor {
      return tf.tidy(() => tf.mul(x, hardSigmoid(x)));
    }
    getConfig() {
      return {};
    }
  }
  class LeakyRelu extends tf.serialization.Serializable {
    static readonly className = 'leakyRelu';
    apply(x: Tensor): Tensor {
      return tf.leakyRelu(x, 0.2);
    }
    getConfig() {
      return {};
    }
  }
  return [KerasHardSigmoid, HardSwish, LeakyRelu];
}

interface NormalizationArgs {
  axis?: number[];
  mean?: number[] | null;
  variance?: number[] | null;
  invert?: boolean;
}

function one(inputs: Tensor | Tensor[]): Tensor {
  const list = Array.isArray(inputs) ? inputs : [inputs];
  if (list.length !== 1) throw new Error(`expected one input tensor, received ${list.length}`);
  return list[0]!;
}

function normalizationLayer(tf: Tf) {
  return class Normalization extends tf.layers.Layer {
    static readonly className = 'Normalization';
    readonly axis: number[];
    readonly mean: number[] | null;
    readonly variance: number[] | null;
    readonly invert: boolean;
    private broadcast: number[] = [];
    private weightsOf: { mean: ReturnType<Layer['addWeight']>; variance: ReturnType<Layer['addWeight']> } | undefined;

    constructor(args: NormalizationArgs & LayerArgs) {
      super(args);
      this.axis = args.axis ?? [-1];
      this.mean = args.mean ?? null;
      this.variance = args.variance ?? null;
      this.invert = args.invert ?? false;
    }

    override build(inputShape: Shape | Shape[]): void {
      const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
      const keep = this.axis.map((a) => (a < 0 ? a + shape.length : a));
      if (keep.some((a) => a < 1 || a >= shape.length || shape[a] === null)) {
        throw new Error(`Normalization ${this.name}: axis ${JSON.stringify(this.axis)} must name known, non-batch axes of ${JSON.stringify(shape)}`);
      }
      this.broadcast = shape.map((d, i) => (keep.includes(i) ? (d as number) : 1));
      const statShape = keep.sort((a, b) => a - b).map((a) => shape[a] as number);
      const size = statShape.reduce((a, b) => a * b, 1);
      if (this.mean === null || this.variance === null) {
        // Keras's adapted state: loaded from the file's weights, never trained.
        const mean = this.addWeight('mean', statShape, 'float32', tf.initializers.zeros(), undefined, false);
        const variance = this.addWeight('variance', statShape, 'float32', tf.initializers.ones(), undefined, false);
        this.weightsOf = { mean, variance };
      } else if (![1, size].includes(this.mean.length) || ![1, size].includes(this.variance.length)) {
        throw new Error(`Normalization ${this.name}: mean and variance must hold 1 or ${size} values, not ${this.mean.length} and ${this.variance.length}`);
      }
      this.built = true;
    }

    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => {
        const x = tf.cast(one(inputs), 'float32');
        const stat = (values: number[] | null, weight: ReturnType<Layer['addWeight']> | undefined) =>
          weight ? weight.read().reshape(this.broadcast) : tf.tensor(values!, values!.length === 1 ? [] : this.broadcast, 'float32');
        const mean = stat(this.mean, this.weightsOf?.mean);
        const std = tf.maximum(tf.sqrt(stat(this.variance, this.weightsOf?.variance)), EPSILON);
        return this.invert ? tf.add(mean, tf.mul(x, std)) : tf.div(tf.sub(x, mean), std);
      });
    }

    override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
      return inputShape;
    }

    override getConfig() {
      return { ...super.getConfig(), axis: this.axis, mean: this.mean, variance: this.variance, invert: this.invert };
    }
  };
}

interface KerasReluArgs {
  maxValue?: number | null;
  negativeSlope?: number;
  threshold?: number;
}

function kerasReluLayer(tf: Tf) {
  return class KerasReLU extends tf.layers.Layer {
    static readonly className = 'KerasReLU';
    readonly maxValue: number | null;
    readonly negativeSlope: number;
    readonly threshold: number;

    constructor(args: KerasReluArgs & LayerArgs) {
      super(args);
      this.maxValue = args.maxValue ?? null;
      this.negativeSlope = args.negativeSlope ?? 0;
      this.threshold = args.threshold ?? 0;
    }

    /** Keras 3's activations.relu, step for step (keras/src/activations/activations.py). */
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() => {
        const x = one(inputs);
        const { maxValue, negativeSlope: slope, threshold } = this;
        if (slope !== 0 && maxValue === null && threshold === 0) return tf.leakyRelu(x, slope);
        const negative = slope !== 0 ? tf.relu(threshold !== 0 ? tf.add(tf.neg(x), threshold) : tf.neg(x)) : undefined;
        let y = threshold !== 0 ? tf.where(tf.greater(x, threshold), x, tf.zerosLike(x)) : tf.relu(x);
        if (maxValue !== null) y = tf.clipByValue(y, 0, maxValue);
        return negative === undefined ? y : tf.sub(y, tf.mul(negative, slope));
      });
    }

    override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
      return inputShape;
    }

    override getConfig() {
      return { ...super.getConfig(), maxValue: this.maxValue, negativeSlope: this.negativeSlope, threshold: this.threshold };
    }
  };
}

function subtractLayer(tf: Tf) {
  return class Subtract extends tf.layers.Layer {
    static readonly className = 'Subtract';

    override call(inputs: Tensor | Tensor[]): Tensor {
      const list = Array.isArray(inputs) ? inputs : [inputs];
      if (list.length !== 2) throw new Error(`Subtract ${this.name} takes exactly 2 inputs, received ${list.length}`);
      return tf.sub(list[0]!, list[1]!);
    }

    override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
      return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    }
  };
}

type Registrable = Parameters<Tf['serialization']['registerClass']>[0];

function separableConvRepair(tf: Tf): Registrable {
  type Original = new (args: object) => Layer & { depthMultiplier: number };
  const [original] = tf.serialization.SerializationMap.getMap().classNameMap.SeparableConv2D as unknown as [Original];
  class SeparableConv2D extends original {
    static readonly className = 'SeparableConv2D';

    override getConfig() {
      return { ...super.getConfig(), depthMultiplier: this.depthMultiplier };
    }
  }
  // The static fromConfig is the original's (Serializable's), inherited.
  return SeparableConv2D as unknown as Registrable;
}

/**
 * Registers featherstack's Keras 3 activations and layers with this tfjs; safe to call again.
 *
 * @example
 * registerKerasExtensions(tf);
 * tf.layers.activation({ activation: 'hardSwish' as never }).apply(tf.tensor([-4, 0, 1])); // [0, 0, 0.667]
 */
export function registerKerasExtensions(tf: Tf): void {
  if (registered.has(tf)) return;
  for (const cls of [...activations(tf), normalizationLayer(tf), kerasReluLayer(tf), subtractLayer(tf), separableConvRepair(tf)])
    tf.serialization.registerClass(cls);
  registered.add(tf);
}

/** The class names registered above, for whoever implements them elsewhere (the graph compiler). */
export const KERAS_EXTENSION_CLASSES = ['kerasHardSigmoid', 'hardSwish', 'leakyRelu', 'Normalization', 'KerasReLU', 'Subtract'] as const;
