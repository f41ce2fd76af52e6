/**
 * Activation functions by their tfjs name, each with its forward and (where the graph engine trains
 * through it) its gradient. Keras 3's hard_sigmoid/hard_swish (relu6(x + 3) / 6) are registered with
 * tfjs under 'kerasHardSigmoid' and 'hardSwish' by the importer; tfjs's own 'hardSigmoid' is Keras 2's
 * clip(0.2x + 0.5, 0, 1).
 * @internal
 */
import type { Attr, DType, GraphBuilder } from '@featherstack/tensorflow';

interface Activation {
  forward(g: GraphBuilder, TC: Record<string, Attr>, z: string, name: string, c: (name: string, v: number) => string): string;
  /** dz from dy, the output y and the input z (`c` makes a constant of the compute type). */
  grad?(g: GraphBuilder, TC: Record<string, Attr>, dy: string, y: string, z: string, name: string, c: (name: string, v: number) => string): string;
}

/** d relu6(z + 3) / 6: where 0 < z + 3 < 6, dy / 6. */
function hardSigmoid6Grad(g: GraphBuilder, TC: Record<string, Attr>, dy: string, z: string, name: string, c: (name: string, v: number) => string): string {
  const shifted = g.op('AddV2', [z, c(`${name}/d_three`, 3)], TC);
  return g.op('Mul', [g.op('Relu6Grad', [dy, shifted], TC), c(`${name}/d_sixth`, 1 / 6)], TC, `${name}/d_hard_sigmoid`);
}

const unary =
  (op: string, attrs: Record<string, Attr> = {}): Activation['forward'] =>
  (g, TC, z, name) =>
    g.op(op, [z], { ...TC, ...attrs }, `${name}/${op.toLowerCase()}`);

/** relu6(x + 3) / 6, as Keras 3 computes hard_sigmoid. */
function hardSigmoid6(g: GraphBuilder, TC: Record<string, Attr>, z: string, name: string, c: (name: string, v: number) => string): string {
  const shifted = g.op('AddV2', [z, c(`${name}/three`, 3)], TC);
  return g.op('Mul', [g.op('Relu6', [shifted], TC), c(`${name}/sixth`, 1 / 6)], TC, `${name}/hard_sigmoid`);
}

export const ACTIVATION_TABLE: Record<string, Activation> = {
  linear: { forward: (_g, _TC, z) => z, grad: (_g, _TC, dy) => dy },
  relu: { forward: unary('Relu'), grad: (g, TC, dy, y, _z, name) => g.op('ReluGrad', [dy, y], TC, `${name}/d_relu`) },
  relu6: { forward: unary('Relu6'), grad: (g, TC, dy, _y, z, name) => g.op('Relu6Grad', [dy, z], TC, `${name}/d_relu6`) },
  elu: { forward: unary('Elu'), grad: (g, TC, dy, y, _z, name) => g.op('EluGrad', [dy, y], TC, `${name}/d_elu`) },
  selu: { forward: unary('Selu'), grad: (g, TC, dy, y, _z, name) => g.op('SeluGrad', [dy, y], TC, `${name}/d_selu`) },
  sigmoid: { forward: unary('Sigmoid'), grad: (g, TC, dy, y, _z, name) => g.op('SigmoidGrad', [y, dy], TC, `${name}/d_sigmoid`) },
  tanh: { forward: unary('Tanh'), grad: (g, TC, dy, y, _z, name) => g.op('TanhGrad', [y, dy], TC, `${name}/d_tanh`) },
  softplus: { forward: unary('Softplus'), grad: (g, TC, dy, _y, z, name) => g.op('SoftplusGrad', [dy, z], TC, `${name}/d_softplus`) },
  softsign: { forward: unary('Softsign'), grad: (g, TC, dy, _y, z, name) => g.op('SoftsignGrad', [dy, z], TC, `${name}/d_softsign`) },
  softmax: { forward: unary('Softmax') },
  // d z·σ(z) = σ(z) · (1 + z · (1 − σ(z))).
  swish: {
    forward: (g, TC, z, name) => g.op('Mul', [z, g.op('Sigmoid', [z], TC)], TC, `${name}/swish`),
    grad: (g, TC, dy, _y, z, name, c) => {
      const s = g.op('Sigmoid', [z], TC, `${name}/d_sigmoid`);
      const one = c(`${name}/d_one`, 1);
      const slope = g.op('Mul', [s, g.op('AddV2', [one, g.op('Mul', [z, g.op('Sub', [one, s], TC)], TC)], TC)], TC);
      return g.op('Mul', [dy, slope], TC, `${name}/d_swish`);
    },
  },
  mish: { forward: (g, TC, z, name) => g.op('Mul', [z, g.op('Tanh', [g.op('Softplus', [z], TC)], TC)], TC, `${name}/mish`) },
  // Keras 2's hard_sigmoid (tfjs's): clip(0.2x + 0.5, 0, 1).
  hardSigmoid: {
    forward: (g, TC, z, name, c) =>
      g.op(
        'Minimum',
        [g.op('Relu', [g.op('AddV2', [g.op('Mul', [z, c(`${name}/slope`, 0.2)], TC), c(`${name}/half`, 0.5)], TC)], TC), c(`${name}/one`, 1)],
        TC,
        `${name}/hard_sigmoid`,
      ),
  },
  kerasHardSigmoid: { forward: hardSigmoid6, grad: (g, TC, dy, _y, z, name, c) => hardSigmoid6Grad(g, TC, dy, z, name, c) },
  // d z·h(z) = h(z) + z · h'(z), h the hard sigmoid relu6(z + 3) / 6.
  hardSwish: {
    forward: (g, TC, z, name, c) => g.op('Mul', [z, hardSigmoid6(g, TC, z, name, c)], TC, `${name}/hard_swish`),
    grad: (g, TC, dy, _y, z, name, c) =>
      g.op(
        'AddV2',
        [g.op('Mul', [dy, hardSigmoid6(g, TC, z, `${name}/d`, c)], TC), g.op('Mul', [z, hardSigmoid6Grad(g, TC, dy, z, name, c)], TC)],
        TC,
        `${name}/d_hard_swish`,
      ),
  },
  leakyRelu: {
    forward: unary('LeakyRelu', { alpha: { f: 0.2 } }),
    grad: (g, TC, dy, _y, z, name) => g.op('LeakyReluGrad', [dy, z], { ...TC, alpha: { f: 0.2 } }, `${name}/d_leaky_relu`),
  },
  // Keras's exact GELU: x · (1 + erf(x / √2)) / 2; its derivative Φ(x) + x · φ(x).
  gelu: {
    grad: (g, TC, dy, _y, z, name, c) => {
      const cdf = g.op(
        'Mul',
        [c(`${name}/d_half`, 0.5), g.op('AddV2', [c(`${name}/d_one`, 1), g.op('Erf', [g.op('Mul', [z, c(`${name}/d_rsqrt2`, Math.SQRT1_2)], TC)], TC)], TC)],
        TC,
      );
      const pdf = g.op(
        'Mul',
        [g.op('Exp', [g.op('Mul', [g.op('Square', [z], TC), c(`${name}/d_minus_half`, -0.5)], TC)], TC), c(`${name}/d_norm`, 1 / Math.sqrt(2 * Math.PI))],
        TC,
      );
      return g.op('Mul', [dy, g.op('AddV2', [cdf, g.op('Mul', [z, pdf], TC)], TC)], TC, `${name}/d_gelu`);
    },
    forward: (g, TC, z, name, c) =>
      g.op(
        'Mul',
        [
          g.op('Mul', [z, c(`${name}/half`, 0.5)], TC),
          g.op('AddV2', [c(`${name}/one`, 1), g.op('Erf', [g.op('Mul', [z, c(`${name}/rsqrt2`, Math.SQRT1_2)], TC)], TC)], TC),
        ],
        TC,
        `${name}/gelu`,
      ),
  },
  // The tanh approximation: x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) / 2.
  gelu_new: {
    forward: (g, TC, z, name, c) => {
      const cube = g.op('Mul', [g.op('Mul', [z, z], TC), z], TC);
      const inner = g.op('Mul', [c(`${name}/k`, Math.sqrt(2 / Math.PI)), g.op('AddV2', [z, g.op('Mul', [cube, c(`${name}/a`, 0.044715)], TC)], TC)], TC);
      return g.op(
        'Mul',
        [g.op('Mul', [z, c(`${name}/half`, 0.5)], TC), g.op('AddV2', [c(`${name}/one`, 1), g.op('Tanh', [inner], TC)], TC)],
        TC,
        `${name}/gelu`,
      );
    },
  },
};

export function activationNames(): string[] {
  return Object.keys(ACTIVATION_TABLE);
}

export function hasActivation(name: string): boolean {
  return Object.hasOwn(ACTIVATION_TABLE, name);
}

export function activate(g: GraphBuilder, type: DType, activation: string, z: string, name: string, c: (name: string, v: number) => string): string {
  return ACTIVATION_TABLE[activation]!.forward(g, { T: { type } }, z, name, c);
}

/** The activation's gradient, or undefined where the graph engine has none. */
export function activationGrad(
  g: GraphBuilder,
  type: DType,
  activation: string,
  dy: string,
  y: string,
  z: string,
  name: string,
  c: (name: string, v: number) => string,
): string | undefined {
  return ACTIVATION_TABLE[activation]?.grad?.(g, { T: { type } }, dy, y, z, name, c);
}
