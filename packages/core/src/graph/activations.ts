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
  /** dz from dy, the output y and the input z. */
  grad?(g: GraphBuilder, TC: Record<string, Attr>, dy: string, y: string, z: string, name: string): string;
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
  selu: { forward: unary('Selu') },
  sigmoid: { forward: unary('Sigmoid'), grad: (g, TC, dy, y, _z, name) => g.op('SigmoidGrad', [y, dy], TC, `${name}/d_sigmoid`) },
  tanh: { forward: unary('Tanh'), grad: (g, TC, dy, y, _z, name) => g.op('TanhGrad', [y, dy], TC, `${name}/d_tanh`) },
  softplus: { forward: unary('Softplus') },
  softsign: { forward: unary('Softsign') },
  softmax: { forward: unary('Softmax') },
  swish: { forward: (g, TC, z, name) => g.op('Mul', [z, g.op('Sigmoid', [z], TC)], TC, `${name}/swish`) },
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
  kerasHardSigmoid: { forward: hardSigmoid6 },
  hardSwish: { forward: (g, TC, z, name, c) => g.op('Mul', [z, hardSigmoid6(g, TC, z, name, c)], TC, `${name}/hard_swish`) },
  leakyRelu: { forward: unary('LeakyRelu', { alpha: { f: 0.2 } }) },
  // Keras's exact GELU: x · (1 + erf(x / √2)) / 2.
  gelu: {
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
export function activationGrad(g: GraphBuilder, type: DType, activation: string, dy: string, y: string, z: string, name: string): string | undefined {
  return ACTIVATION_TABLE[activation]?.grad?.(g, { T: { type } }, dy, y, z, name);
}
