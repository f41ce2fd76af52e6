/**
 * The contract of one layer kind: its forward (and, where the graph engine can train it, its
 * gradient). The compiler walks the model and looks each layer's class up in the table
 * (kinds/index.ts), so adding a kind is one new file.
 * @internal
 */
import type { Attr } from '@featherstack/tensorflow';
import type { GraphContext } from '../context.js';
import type { LayerLike } from '../layers.js';

/** A folded BatchNormalization: per-channel float32 scale and shift for the producing convolution. */
export interface Fold {
  scale: string;
  shift: string;
}

/** One layer call in the compiled graph, and what its gradient needs. */
export interface Step {
  layer: LayerLike;
  kind: string;
  config: Record<string, unknown>;
  /** Input tensors (graph names, in the compute type) and their static shapes [batch, ...]. */
  inputs: string[];
  inputShapes: (number | null)[][];
  /** The steps that produced the inputs (undefined: the model's input). */
  sources: (Step | undefined)[];
  outputShape: (number | null)[];
  /** The output before the layer's own `activation` (its gradient needs both). */
  preActivation: string;
  output: string;
  /** The layer's own activation (config.activation; 'linear' for kinds without one). */
  activation: string;
  /** Variable indices by role ('kernel', 'bias', …). */
  params: Record<string, number>;
  /** Attributes and tensors the forward keeps for the gradient. */
  attrs: Record<string, Attr>;
  saved: Record<string, string>;
  /** A BatchNormalization folded into this convolution (forward only). */
  fold?: Fold;
  /** This layer is a BatchNormalization folded into its producer: its output is its input. */
  folded?: boolean;
}

export interface BackwardContext extends GraphContext {
  trainable(index: number): boolean;
  setGrad(index: number, grad: string): void;
}

export interface LayerKind {
  /** Builds the forward and returns the pre-activation output; may fill step.params/attrs/saved. */
  forward(ctx: GraphContext, step: Step): string;
  /**
   * The gradient: `dz` is d(loss)/d(preActivation); returns d(loss)/d(input i) where `wants[i]`
   * (undefined elsewhere) and sets the gradients of trainable weights. Absent: the kind does not
   * train on the graph engine yet, and the compiler refuses to backpropagate through it.
   */
  backward?(ctx: BackwardContext, step: Step, dz: string, wants: boolean[]): (string | undefined)[];
  /** Why `backward` is absent (for the refusal). */
  noGradient?: string;
  /** Whether the layer's config.activation applies after its forward (Conv2D, Dense, …). */
  activates?: boolean;
}
