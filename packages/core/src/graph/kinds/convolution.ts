/**
 * Conv2D, DepthwiseConv2D and SeparableConv2D, with their gradients: NHWC convolutions with an optional bias, into which the compiler folds
 * a following inference-mode BatchNormalization (kernel · scale, bias · scale + shift: exact up to
 * float rounding), so that TensorFlow fuses conv + bias + activation into one kernel.
 * @internal
 */
import type { GraphContext } from '../context.js';
import { type LayerLike, pairOf, unsupported, weightNamed } from '../layers.js';
import type { BackwardContext, LayerKind, Step } from './kind.js';

/** The conv attributes TensorFlow's Conv2D, its gradients and DepthwiseConv2dNative share. */
function convAttrs(layer: LayerLike, config: Record<string, unknown>) {
  const [sh, sw] = pairOf(config.strides ?? 1, 'strides', layer.name);
  const [dh, dw] = pairOf(config.dilationRate ?? 1, 'dilationRate', layer.name);
  if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) throw unsupported(layer, 'strides and dilationRate both above 1');
  const padding = String(config.padding ?? 'valid').toUpperCase();
  if (padding !== 'VALID' && padding !== 'SAME') throw unsupported(layer, `padding '${config.padding}'`);
  return { strides: { ints: [1, sh, sw, 1] }, padding: { s: padding }, data_format: { s: 'NHWC' }, dilations: { ints: [1, dh, dw, 1] } };
}

/** The kernel and bias a convolution computes with: the variables, or BatchNormalization folded in. */
function kernelAndBias(ctx: GraphContext, step: Step, kernelName: string, foldShape?: (scale: string) => string) {
  const { layer } = step;
  const kernelW = weightNamed(layer, kernelName);
  if (!kernelW) throw unsupported(layer, `no '${kernelName}' weight`);
  step.params.kernel = ctx.weightIndex(layer, kernelW);
  const biasW = step.config.useBias === false ? undefined : weightNamed(layer, 'bias');
  if (biasW) step.params.bias = ctx.weightIndex(layer, biasW);
  if (!step.fold) return { kernel: ctx.weight(step.params.kernel), bias: biasW ? ctx.weight(step.params.bias!) : undefined };
  const { g } = ctx;
  const F = { T: { type: 'float' as const } };
  const scale = foldShape ? foldShape(step.fold.scale) : step.fold.scale;
  const kernel = ctx.compute(g.op('Mul', [ctx.reads[step.params.kernel]!, scale], F, `${layer.name}/folded_kernel`));
  const shift = biasW ? g.op('AddV2', [g.op('Mul', [ctx.reads[step.params.bias!]!, step.fold.scale], F), step.fold.shift], F) : step.fold.shift;
  return { kernel, bias: ctx.compute(shift, `${layer.name}/folded_bias`) };
}

function biasAdd(ctx: GraphContext, z: string, bias: string | undefined, name: string): string {
  return bias ? ctx.g.op('BiasAdd', [z, bias], { ...ctx.TC, data_format: { s: 'NHWC' } }, `${name}/bias`) : z;
}

/**
 * A 1×1 convolution in inference as what it is, a matrix product over the pixels (strided: of the
 * sampled pixels, which are all a 1×1 kernel reads; 'same' pads nothing for it). The same values,
 * and it keeps inference off the oneDNN primitive that divides by zero setting up some 1×1
 * convolutions (ResNet50's, brgemm_convolution_utils::est_eff_1x1, TF 2.21 on AVX-512).
 * Returns undefined for other convolutions.
 */
function pointwise(ctx: GraphContext, step: Step, kernel: string): string | undefined {
  const shape = ctx.variables[step.params.kernel!]!.shape;
  const strides = (step.attrs.strides as { ints: number[] }).ints;
  const dilations = (step.attrs.dilations as { ints: number[] }).ints;
  const [, h, w] = step.outputShape;
  if (ctx.train || shape[0] !== 1 || shape[1] !== 1 || dilations.some((d) => d !== 1) || !h || !w) return undefined;
  const { g, TC } = ctx;
  const name = step.layer.name;
  const [cin, cout] = [shape[2]!, shape[3]!];
  let x = step.inputs[0]!;
  if (strides[1] !== 1 || strides[2] !== 1) {
    const zeros = g.constInt(`${name}/subsample_begin`, [0, 0, 0, 0]);
    x = g.op(
      'StridedSlice',
      [x, zeros, g.constInt(`${name}/subsample_end`, [0, 0, 0, 0]), g.constInt(`${name}/subsample_strides`, strides)],
      {
        ...TC,
        Index: { type: 'int32' },
        begin_mask: { i: 15 },
        end_mask: { i: 15 },
        ellipsis_mask: { i: 0 },
        new_axis_mask: { i: 0 },
        shrink_axis_mask: { i: 0 },
      },
      `${name}/subsample`,
    );
  }
  const reshape = (t: string, to: number[], label: string) =>
    g.op('Reshape', [t, g.constInt(`${name}/${label}_shape`, to)], { ...TC, Tshape: { type: 'int32' } });
  const flatKernel = reshape(kernel, [cin, cout], 'kernel');
  const product = g.op(
    'MatMul',
    [reshape(x, [-1, cin], 'pixels'), flatKernel],
    { ...TC, transpose_a: { b: false }, transpose_b: { b: false } },
    `${name}/matmul`,
  );
  return reshape(product, [-1, h, w, cout], 'output');
}

export const Conv2D: LayerKind = {
  activates: true,
  forward(ctx, step) {
    step.attrs = convAttrs(step.layer, step.config);
    const groups = step.config.groups;
    if (groups !== undefined && groups !== 1) throw unsupported(step.layer, `groups ${groups} (only 1)`);
    const { kernel, bias } = kernelAndBias(ctx, step, 'kernel');
    const z =
      pointwise(ctx, step, kernel) ??
      ctx.g.op('Conv2D', [step.inputs[0]!, kernel], { ...ctx.TC, ...step.attrs, use_cudnn_on_gpu: { b: false } }, `${step.layer.name}/conv`);
    return biasAdd(ctx, z, bias, step.layer.name);
  },
  backward(ctx: BackwardContext, step, dz, wants) {
    const { g } = ctx;
    const name = step.layer.name;
    const kernel = step.params.kernel!;
    const attrs = { ...ctx.TC, ...step.attrs, use_cudnn_on_gpu: { b: false } };
    if (ctx.trainable(kernel)) {
      const shape = g.constInt(`${name}/kshape`, ctx.variables[kernel]!.shape);
      ctx.setGrad(kernel, ctx.toFloat(g.op('Conv2DBackpropFilter', [step.inputs[0]!, shape, dz], attrs, `${name}/d_kernel`)));
    }
    if (step.params.bias !== undefined && ctx.trainable(step.params.bias))
      ctx.setGrad(step.params.bias, ctx.toFloat(g.op('BiasAddGrad', [dz], { ...ctx.TC, data_format: { s: 'NHWC' } }, `${name}/d_bias`)));
    if (!wants[0]) return [];
    return [g.op('Conv2DBackpropInput', [ctx.shape(step.inputs[0]!, `${name}/in_shape`), ctx.weight(kernel), dz], attrs, `${name}/d_input`)];
  },
};

/**
 * The gradients of a depthwise convolution of `input` by `kernel` (a variable index), for `dz`:
 * TensorFlow's own backprop kernels for the filter and the input.
 */
function depthwiseBackward(ctx: BackwardContext, input: string, kernel: number, dz: string, attrs: Step['attrs'], wantsInput: boolean, name: string) {
  const { g } = ctx;
  if (ctx.trainable(kernel)) {
    const shape = g.constInt(`${name}/dw_kshape`, ctx.variables[kernel]!.shape);
    ctx.setGrad(kernel, ctx.toFloat(g.op('DepthwiseConv2dNativeBackpropFilter', [input, shape, dz], { ...ctx.TC, ...attrs }, `${name}/d_depthwise_kernel`)));
  }
  if (!wantsInput) return undefined;
  return g.op(
    'DepthwiseConv2dNativeBackpropInput',
    [ctx.shape(input, `${name}/dw_in_shape`), ctx.weight(kernel), dz],
    { ...ctx.TC, ...attrs },
    `${name}/d_depthwise_input`,
  );
}

function biasBackward(ctx: BackwardContext, step: Step, dz: string, name: string): void {
  if (step.params.bias !== undefined && ctx.trainable(step.params.bias))
    ctx.setGrad(step.params.bias, ctx.toFloat(ctx.g.op('BiasAddGrad', [dz], { ...ctx.TC, data_format: { s: 'NHWC' } }, `${name}/d_bias`)));
}

export const DepthwiseConv2D: LayerKind = {
  activates: true,
  backward(ctx, step, dz, wants) {
    biasBackward(ctx, step, dz, step.layer.name);
    const dx = depthwiseBackward(ctx, step.inputs[0]!, step.params.kernel!, dz, step.attrs, Boolean(wants[0]), step.layer.name);
    return dx ? [dx] : [];
  },
  forward(ctx, step) {
    step.attrs = convAttrs(step.layer, step.config);
    // The fold's per-output-channel scale [C·M] laid over the kernel's last two axes [C, M].
    const foldShape = (scale: string) => {
      const [, , channels, multiplier] = ctx.variables[step.params.kernel!]!.shape;
      return ctx.g.op('Reshape', [scale, ctx.g.constInt(`${step.layer.name}/fold_shape`, [channels!, multiplier!])], {
        T: { type: 'float' },
        Tshape: { type: 'int32' },
      });
    };
    const { kernel, bias } = kernelAndBias(ctx, step, 'depthwise_kernel', foldShape);
    const z = ctx.g.op('DepthwiseConv2dNative', [step.inputs[0]!, kernel], { ...ctx.TC, ...step.attrs }, `${step.layer.name}/depthwise`);
    return biasAdd(ctx, z, bias, step.layer.name);
  },
};

/** The 1×1 convolution after a separable convolution's depthwise one. */
const POINTWISE_ATTRS = { strides: { ints: [1, 1, 1, 1] }, padding: { s: 'VALID' }, data_format: { s: 'NHWC' }, use_cudnn_on_gpu: { b: false } };

export const SeparableConv2D: LayerKind = {
  activates: true,
  // Through the 1×1 convolution to the depthwise output, then through the depthwise convolution.
  backward(ctx, step, dz, wants) {
    const { g } = ctx;
    const name = step.layer.name;
    const depthwiseOut = step.saved.depthwise!;
    const pointwise = step.params.pointwise!;
    const attrs = { ...ctx.TC, ...POINTWISE_ATTRS };
    biasBackward(ctx, step, dz, name);
    if (ctx.trainable(pointwise)) {
      const shape = g.constInt(`${name}/pw_kshape`, ctx.variables[pointwise]!.shape);
      ctx.setGrad(pointwise, ctx.toFloat(g.op('Conv2DBackpropFilter', [depthwiseOut, shape, dz], attrs, `${name}/d_pointwise_kernel`)));
    }
    const dd = g.op('Conv2DBackpropInput', [ctx.shape(depthwiseOut, `${name}/pw_in_shape`), ctx.weight(pointwise), dz], attrs, `${name}/d_depthwise_out`);
    const dx = depthwiseBackward(ctx, step.inputs[0]!, step.params.depthwise!, dd, step.attrs, Boolean(wants[0]), name);
    return dx ? [dx] : [];
  },
  forward(ctx, step) {
    const { g, TC } = ctx;
    const { layer } = step;
    const attrs = convAttrs(layer, step.config);
    step.attrs = attrs;
    const depthwise = weightNamed(layer, 'depthwise_kernel');
    const pointwise = weightNamed(layer, 'pointwise_kernel');
    if (!depthwise || !pointwise) throw unsupported(layer, 'no depthwise_kernel and pointwise_kernel weights');
    step.params.depthwise = ctx.weightIndex(layer, depthwise);
    step.params.pointwise = ctx.weightIndex(layer, pointwise);
    const biasW = step.config.useBias === false ? undefined : weightNamed(layer, 'bias');
    if (biasW) step.params.bias = ctx.weightIndex(layer, biasW);
    const d = g.op('DepthwiseConv2dNative', [step.inputs[0]!, ctx.weight(step.params.depthwise)], { ...TC, ...attrs }, `${layer.name}/depthwise`);
    step.saved.depthwise = d;
    const p = g.op('Conv2D', [d, ctx.weight(step.params.pointwise)], { ...TC, ...POINTWISE_ATTRS }, `${layer.name}/pointwise`);
    return biasAdd(ctx, p, biasW ? ctx.weight(step.params.bias!) : undefined, layer.name);
  },
};
