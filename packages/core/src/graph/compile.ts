/**
 * Compiles a tfjs layers model into one TensorFlow graph: the forward pass, the loss, the gradients
 * written out layer by layer, and the optimizer's update as one fused kernel per variable
 * (ResourceApplyAdam and friends). TensorFlow's graph optimiser then fuses conv + bias + relu and
 * schedules the weight and input gradients itself, as Keras's tf.function gets them.
 *
 * The graph has two ways to apply an update, so that the same graph serves one replica or many:
 * - `apply`: the gradients computed in this run (one replica: a whole step is one native call);
 * - `apply_fed`: gradients fed through `grad_in/<i>` (replicas: each computes the gradients of its
 *   slice, they are summed in shared memory, and every replica applies the same sum).
 *
 * Supported: sequential chains of InputLayer, Conv2D, Dense, MaxPooling2D, AveragePooling2D,
 * GlobalAveragePooling2D, Flatten, Dropout, Activation and ReLU layers with linear, relu, relu6,
 * elu, sigmoid or tanh activations; the last layer ends in softmax (categorical or sparse
 * cross-entropy) or sigmoid (binary). Anything else is refused by name (GraphCompileError), and
 * the eager engine trains it instead.
 * @internal
 */
import { type DType, F32, GraphBuilder } from '@featherstack/tensorflow';
import type { LayersModel } from '@featherstack/tensorflow';
import {
  ACTIVATIONS,
  activate,
  activationGrad,
  chainOf,
  GraphCompileError,
  type LayerLike,
  layerOfVariable,
  pairOf,
  sizeOf,
  type Step,
  unsupported,
} from './layers.js';

export { GraphCompileError };

export type LossKind = 'categorical' | 'sparse' | 'binary';
export type OptimizerKind = 'adam' | 'sgd' | 'momentum' | 'rmsprop';

export interface CompileOptions {
  /** Build the loss, gradients and optimizer (false: forward only, for extraction). */
  train: boolean;
  loss?: LossKind;
  optimizer?: OptimizerKind;
  /** Seed of the dropout masks. */
  seed?: number;
  /** A layer whose output is fetchable as `output` (default: the model's last layer). */
  outputLayer?: string;
  /**
   * 'float32' (default), or 'mixed-bfloat16': layers compute in bfloat16 (half the memory traffic,
   * and twice the multiply rate on CPUs with AVX512_BF16 or AMX) while weights, optimizer state,
   * loss and gradients sent to the optimizer stay float32, as Keras's 'mixed_bfloat16' policy does.
   */
  precision?: Precision;
}

export type Precision = 'float32' | 'mixed-bfloat16';

export interface GraphVariable {
  /** Index in model.getWeights(). */
  index: number;
  name: string;
  shape: number[];
  size: number;
  trainable: boolean;
}

export interface CompiledGraph {
  graphDef: Uint8Array;
  /** [height, width, channels] of one input sample. */
  inputShape: number[];
  /** Units of the fetchable `output` (per sample). */
  outputSize: number;
  /** Output units of the model's last layer (classes). */
  classes: number;
  variables: GraphVariable[];
  /** Optimizer slots per trainable variable (Adam: m then v), in the order `slot/<k>` is numbered. */
  slotsPerVariable: number;
  /** Names of the trainable variables' positions in `variables` (gradients are numbered by these). */
  trainable: number[];
}

const OPTIMIZER_SLOTS: Record<OptimizerKind, number> = { adam: 2, sgd: 0, momentum: 1, rmsprop: 2 };

/**
 * Compiles `model` (whose first layer is its input) into a GraphDef; see the module comment.
 *
 * @example
 * const compiled = compileModel(withClassifier(tf, base, 10), { train: true, loss: 'categorical', optimizer: 'adam' });
 */
export function compileModel(model: LayersModel, options: CompileOptions): CompiledGraph {
  const layers = chainOf(model);
  const g = new GraphBuilder();
  const inputShape = (model.inputs[0]!.shape as (number | null)[]).slice(1) as number[];
  if (inputShape.some((d) => d === null)) throw new GraphCompileError(`model '${model.name}' has an input of unknown size ${JSON.stringify(inputShape)}`);

  // Variables, numbered as model.getWeights() numbers them.
  const modelWeights = model.weights as unknown as { name: string; shape: number[]; trainable: boolean }[];
  const variables: GraphVariable[] = modelWeights.map((w, index) => ({
    index,
    name: w.name,
    shape: [...w.shape],
    size: w.shape.reduce((a, b) => a * b, 1),
    trainable: w.trainable,
  }));
  const handles: string[] = [];
  const reads: string[] = [];
  for (const v of variables) {
    const handle = g.op(
      'VarHandleOp',
      [],
      { dtype: { type: 'float' }, shape: { shape: v.shape }, shared_name: { s: `v${v.index}` }, container: { s: '' } },
      `var/${v.index}`,
    );
    handles.push(handle);
    reads.push(g.op('ReadVariableOp', [handle], { dtype: { type: 'float' } }, `read/${v.index}`));
  }
  const inits = variables.map((v) =>
    g.op('AssignVariableOp', [handles[v.index]!, g.placeholder(`init/${v.index}`, 'float', v.shape)], { dtype: { type: 'float' } }, `assign/${v.index}`),
  );
  const weightIndex = (w: { name: string }) => {
    const i = modelWeights.indexOf(w as (typeof modelWeights)[number]);
    if (i < 0) throw new GraphCompileError(`weight '${w.name}' is not among model '${model.name}''s weights`);
    return i;
  };

  if (options.precision !== undefined && options.precision !== 'float32' && options.precision !== 'mixed-bfloat16') {
    throw new GraphCompileError(`options.precision must be 'float32' or 'mixed-bfloat16', received ${JSON.stringify(options.precision)}`);
  }
  // The compute type of layers; float32 master weights are cast to it where a layer reads them.
  const CT: DType = options.precision === 'mixed-bfloat16' ? 'bfloat16' : 'float';
  const TC = { T: { type: CT } };
  const cast = (t: string, from: DType, to: DType, name?: string) =>
    from === to ? t : g.op('Cast', [t], { SrcT: { type: from }, DstT: { type: to }, Truncate: { b: false } }, name);
  const compute = (t: string, name?: string) => cast(t, 'float', CT, name);
  const toFloat = (t: string, name?: string) => cast(t, CT, 'float', name);
  const scalarConst = (name: string, value: number) => compute(g.constFloat(name, [value], []));
  const weights = new Map<number, string>();
  const weight = (i: number) => {
    if (!weights.has(i)) weights.set(i, compute(reads[i]!, `compute/${i}`));
    return weights.get(i)!;
  };
  const x = g.placeholder('x', 'float', [null, ...inputShape]);
  let h = compute(x, 'x_compute');
  const steps: Step[] = [];
  let dropouts = 0;
  const seed = options.seed ?? 1;
  for (const [i, layer] of layers.entries()) {
    const kind = layer.getClassName();
    const config = layer.getConfig();
    const activation = (config.activation as string | undefined) ?? 'linear';
    const last = i === layers.length - 1;
    if (kind === 'InputLayer') {
      if (i !== 0) throw unsupported(layer, 'an input layer inside the chain');
      continue;
    }
    if (!ACTIVATIONS.has(activation) && !(last && (activation === 'softmax' || activation === 'sigmoid'))) {
      throw unsupported(layer, `activation '${activation}' is not one of ${[...ACTIVATIONS].join(', ')} (softmax or sigmoid on the last layer)`);
    }
    if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast')
      throw unsupported(layer, `dataFormat '${config.dataFormat}' (only channelsLast)`);
    const step: Step = { layer, kind, input: h, preActivation: h, output: h, activation, params: {}, attrs: {} };
    const [kernelW, biasW] = layer.weights;
    const bias = (z: string) =>
      config.useBias ? g.op('BiasAdd', [z, weight(weightIndex(biasW!))], { ...TC, data_format: { s: 'NHWC' } }, `${layer.name}/bias`) : z;
    switch (kind) {
      case 'Conv2D': {
        const dilation = pairOf(config.dilationRate ?? 1, 'dilationRate', layer.name);
        if (dilation[0] !== 1 || dilation[1] !== 1) throw unsupported(layer, `dilationRate ${JSON.stringify(config.dilationRate)} (only 1)`);
        const [sh, sw] = pairOf(config.strides ?? 1, 'strides', layer.name);
        const padding = String(config.padding ?? 'valid').toUpperCase();
        if (padding !== 'VALID' && padding !== 'SAME') throw unsupported(layer, `padding '${config.padding}'`);
        step.params.kernel = weightIndex(kernelW!);
        if (config.useBias) step.params.bias = weightIndex(biasW!);
        step.attrs = { strides: { ints: [1, sh, sw, 1] }, padding: { s: padding }, data_format: { s: 'NHWC' } };
        step.preActivation = bias(
          g.op('Conv2D', [h, weight(step.params.kernel)], { ...TC, ...(step.attrs as object), use_cudnn_on_gpu: { b: false } }, `${layer.name}/conv`),
        );
        break;
      }
      case 'Dense': {
        const rank = (layer.inboundNodes[0]?.inboundLayers[0]?.outputShape as unknown[] | undefined)?.length;
        if (rank !== undefined && rank !== 2) throw unsupported(layer, `a Dense layer on a rank-${rank} input (flatten first)`);
        step.params.kernel = weightIndex(kernelW!);
        if (config.useBias) step.params.bias = weightIndex(biasW!);
        step.preActivation = bias(
          g.op('MatMul', [h, weight(step.params.kernel)], { ...TC, transpose_a: { b: false }, transpose_b: { b: false } }, `${layer.name}/matmul`),
        );
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const [ph, pw] = pairOf(config.poolSize ?? 2, 'poolSize', layer.name);
        const [sh, sw] = pairOf(config.strides ?? config.poolSize ?? 2, 'strides', layer.name);
        const padding = String(config.padding ?? 'valid').toUpperCase();
        step.attrs = { ksize: { ints: [1, ph, pw, 1] }, strides: { ints: [1, sh, sw, 1] }, padding: { s: padding }, data_format: { s: 'NHWC' } };
        step.preActivation = g.op(kind === 'MaxPooling2D' ? 'MaxPool' : 'AvgPool', [h], { ...TC, ...(step.attrs as object) }, `${layer.name}/pool`);
        break;
      }
      case 'GlobalAveragePooling2D':
        step.preActivation = g.op(
          'Mean',
          [h, g.constInt(`${layer.name}/axes`, [1, 2])],
          { ...TC, Tidx: { type: 'int32' }, keep_dims: { b: false } },
          `${layer.name}/mean`,
        );
        break;
      case 'Flatten':
        step.preActivation = g.op(
          'Reshape',
          [h, g.constInt(`${layer.name}/shape`, [-1, sizeOf(layer)])],
          { ...TC, Tshape: { type: 'int32' } },
          `${layer.name}/reshape`,
        );
        break;
      case 'Activation':
        break;
      case 'ReLU':
        if (config.maxValue !== null && config.maxValue !== undefined) throw unsupported(layer, `maxValue ${config.maxValue}`);
        step.activation = 'relu';
        break;
      case 'Dropout': {
        const rate = Number(config.rate ?? 0);
        if (config.noiseShape || config.noise_shape) throw unsupported(layer, 'a noiseShape');
        if (options.train && rate > 0) {
          // Inverted dropout as tfjs applies it in training: keep with probability 1 − rate, scale by 1/(1 − rate).
          const uniform = g.op(
            'RandomUniform',
            [g.op('Shape', [h], { T: { type: CT }, out_type: { type: 'int32' } }, `${layer.name}/shape`)],
            { T: { type: 'int32' }, dtype: { type: 'float' }, seed: { i: seed }, seed2: { i: 1000 + dropouts++ } },
            `${layer.name}/uniform`,
          );
          const keep = g.op('Floor', [g.op('AddV2', [uniform, g.constFloat(`${layer.name}/keep`, [1 - rate], [])], F32)], F32, `${layer.name}/keep_mask`);
          step.mask = compute(g.op('Mul', [keep, g.constFloat(`${layer.name}/scale`, [1 / (1 - rate)], [])], F32, `${layer.name}/mask`));
          step.preActivation = g.op('Mul', [h, step.mask], TC, `${layer.name}/drop`);
        }
        break;
      }
      case 'BatchNormalization':
        throw unsupported(
          layer,
          'its moving mean and variance are state that replicas would each update from their own slice; the graph engine does not train it yet',
        );
      default:
        throw unsupported(
          layer,
          `no graph translation (supported: InputLayer, Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Dropout, Activation, ReLU)`,
        );
    }
    if (last && (step.activation === 'softmax' || step.activation === 'sigmoid')) {
      step.output = step.preActivation;
    } else {
      step.output = activate(g, CT, step.activation, step.preActivation, layer.name);
    }
    h = step.output;
    steps.push(step);
  }
  const lastStep = steps.at(-1);
  if (!lastStep) throw new GraphCompileError(`model '${model.name}' has no layers to compile`);
  const classes = sizeOf(lastStep.layer);
  const outputLayer = options.outputLayer ?? lastStep.layer.name;
  const outputStep = steps.find((s) => s.layer.name === outputLayer);
  if (!outputStep)
    throw new GraphCompileError(`outputLayer '${outputLayer}' is not a layer of model '${model.name}' (layers: ${steps.map((s) => s.layer.name).join(', ')})`);
  const outputIsLast = outputStep === lastStep;
  // The fetchable output: probabilities for the last layer, the layer's activations otherwise.
  // Loss and probabilities in float32 whatever the compute type.
  const logits = toFloat(lastStep.output, 'logits');
  const probabilities =
    lastStep.activation === 'softmax'
      ? g.op('Softmax', [logits], F32, 'probabilities')
      : lastStep.activation === 'sigmoid'
        ? g.op('Sigmoid', [logits], F32, 'probabilities')
        : logits;
  g.op('Identity', [outputIsLast ? probabilities : toFloat(outputStep.output)], F32, 'output');
  const outputSize = sizeOf(outputStep.layer);

  const slotsPerVariable = OPTIMIZER_SLOTS[options.optimizer ?? 'adam'];
  const trainable = variables.filter((v) => v.trainable && layerOfVariable(layers, modelWeights, v.index)?.trainable !== false).map((v) => v.index);
  const slotInits: string[] = [];
  const slotHandles: string[][] = [];
  if (options.train) {
    const loss = options.loss ?? 'categorical';
    if ((loss === 'binary') !== (lastStep.activation === 'sigmoid') || (loss !== 'binary' && lastStep.activation !== 'softmax')) {
      throw unsupported(
        lastStep.layer,
        `a ${loss} loss needs the last layer to end in ${loss === 'binary' ? 'sigmoid' : 'softmax'}, not '${lastStep.activation}'`,
      );
    }
    const scale = g.placeholder('scale', 'float', []);
    let perExample: string;
    let dLogits: string;
    let correct: string;
    const argmax = (t: string, name: string) =>
      g.op('ArgMax', [t, g.constInt(`${name}/axis`, [1], [])], { ...F32, Tidx: { type: 'int32' }, output_type: { type: 'int32' } }, name);
    if (loss === 'categorical') {
      const y = g.placeholder('y', 'float', [null, classes]);
      const xent = g.op('SoftmaxCrossEntropyWithLogits', [logits, y], F32, 'xent');
      perExample = `${xent}:0`;
      dLogits = `${xent}:1`;
      correct = g.op(
        'Equal',
        [argmax(logits, 'predicted'), argmax(y, 'truth')],
        { T: { type: 'int32' }, incompatible_shape_error: { b: true } },
        'correct_mask',
      );
    } else if (loss === 'sparse') {
      // The flow's sparse labels are class indices stored as floats.
      const y = g.op(
        'Cast',
        [g.op('Reshape', [g.placeholder('y', 'float', [null, 1]), g.constInt('y/flat', [-1])], { ...F32, Tshape: { type: 'int32' } })],
        { SrcT: { type: 'float' }, DstT: { type: 'int32' }, Truncate: { b: false } },
        'labels',
      );
      const xent = g.op('SparseSoftmaxCrossEntropyWithLogits', [logits, y], { ...F32, Tlabels: { type: 'int32' } }, 'xent');
      perExample = `${xent}:0`;
      dLogits = `${xent}:1`;
      correct = g.op('Equal', [argmax(logits, 'predicted'), y], { T: { type: 'int32' }, incompatible_shape_error: { b: true } }, 'correct_mask');
    } else {
      // Binary cross-entropy on logits z: max(z, 0) − z·y + log(1 + e^−|z|); its gradient is σ(z) − y.
      const y = g.placeholder('y', 'float', [null, 1]);
      const terms = g.op(
        'AddV2',
        [
          g.op('Sub', [g.op('Relu', [logits], F32), g.op('Mul', [logits, y], F32)], F32),
          g.op('Log1p', [g.op('Exp', [g.op('Neg', [g.op('Abs', [logits], F32)], F32)], F32)], F32),
        ],
        F32,
      );
      perExample = g.op('Sum', [terms, g.constInt('bce/axis', [1])], { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } }, 'bce');
      dLogits = g.op('Sub', [g.op('Sigmoid', [logits], F32), y], F32, 'bce_grad');
      const predicted = g.op('Cast', [g.op('Greater', [logits, g.constFloat('zero', [0], [])], F32)], {
        SrcT: { type: 'bool' },
        DstT: { type: 'float' },
        Truncate: { b: false },
      });
      correct = g.op('Equal', [predicted, y], { ...F32, incompatible_shape_error: { b: true } }, 'correct_mask');
    }
    const all = g.constInt('batch_axis', [0]);
    g.op('Sum', [perExample, all], { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } }, 'loss_sum');
    g.op(
      'Sum',
      [
        g.op('Cast', [correct], { SrcT: { type: 'bool' }, DstT: { type: 'float' }, Truncate: { b: false } }),
        g.constInt('correct_axes', loss === 'binary' ? [0, 1] : [0]),
      ],
      { ...F32, Tidx: { type: 'int32' }, keep_dims: { b: false } },
      'correct',
    );

    // Backward, layer by layer. `scale` is 1 / (global batch size): replicas' sums then add up to
    // the mean gradient of the whole batch.
    const grads = new Map<number, string>();
    let dy = compute(g.op('Mul', [dLogits, scale], F32, 'd_logits'));
    const firstTrainable = steps.findIndex((s) => [s.params.kernel, s.params.bias].some((p) => p !== undefined && trainable.includes(p)));
    for (let s = steps.length - 1; s >= 0 && s >= firstTrainable; s--) {
      const step = steps[s]!;
      const name = step.layer.name;
      const dz =
        step === lastStep && (step.activation === 'softmax' || step.activation === 'sigmoid')
          ? dy
          : activationGrad(g, CT, step.activation, dy, step.output, step.preActivation, name);
      const wantsInput = s > firstTrainable;
      let dx = dz;
      switch (step.kind) {
        case 'Conv2D': {
          const kernel = step.params.kernel!;
          if (trainable.includes(kernel))
            grads.set(
              kernel,
              toFloat(
                g.op(
                  'Conv2DBackpropFilter',
                  [step.input, g.constInt(`${name}/kshape`, variables[kernel]!.shape), dz],
                  { ...TC, ...(step.attrs as object), use_cudnn_on_gpu: { b: false } },
                  `${name}/d_kernel`,
                ),
              ),
            );
          if (step.params.bias !== undefined && trainable.includes(step.params.bias))
            grads.set(step.params.bias, toFloat(g.op('BiasAddGrad', [dz], { ...TC, data_format: { s: 'NHWC' } }, `${name}/d_bias`)));
          if (wantsInput)
            dx = g.op(
              'Conv2DBackpropInput',
              [g.op('Shape', [step.input], { T: { type: CT }, out_type: { type: 'int32' } }, `${name}/in_shape`), weight(kernel), dz],
              { ...TC, ...(step.attrs as object), use_cudnn_on_gpu: { b: false } },
              `${name}/d_input`,
            );
          break;
        }
        case 'Dense': {
          const kernel = step.params.kernel!;
          if (trainable.includes(kernel))
            grads.set(kernel, toFloat(g.op('MatMul', [step.input, dz], { ...TC, transpose_a: { b: true }, transpose_b: { b: false } }, `${name}/d_kernel`)));
          if (step.params.bias !== undefined && trainable.includes(step.params.bias))
            grads.set(step.params.bias, toFloat(g.op('BiasAddGrad', [dz], { ...TC, data_format: { s: 'NHWC' } }, `${name}/d_bias`)));
          if (wantsInput) dx = g.op('MatMul', [dz, weight(kernel)], { ...TC, transpose_a: { b: false }, transpose_b: { b: true } }, `${name}/d_input`);
          break;
        }
        case 'MaxPooling2D':
          dx = g.op('MaxPoolGrad', [step.input, step.preActivation, dz], { ...TC, ...(step.attrs as object) }, `${name}/d_input`);
          break;
        case 'AveragePooling2D':
          dx = g.op(
            'AvgPoolGrad',
            [g.op('Shape', [step.input], { T: { type: CT }, out_type: { type: 'int32' } }, `${name}/in_shape`), dz],
            { ...TC, ...(step.attrs as object) },
            `${name}/d_input`,
          );
          break;
        case 'GlobalAveragePooling2D': {
          const [hh, ww, cc] = (step.layer.inboundNodes[0]!.inboundLayers[0]!.outputShape as number[]).slice(1);
          const spread = g.op(
            'Reshape',
            [g.op('Mul', [dz, scalarConst(`${name}/area`, 1 / (hh! * ww!))], TC), g.constInt(`${name}/d_shape`, [-1, 1, 1, cc!])],
            { ...TC, Tshape: { type: 'int32' } },
          );
          dx = g.op(
            'BroadcastTo',
            [spread, g.op('Shape', [step.input], { T: { type: CT }, out_type: { type: 'int32' } }, `${name}/in_shape`)],
            { ...TC, Tidx: { type: 'int32' } },
            `${name}/d_input`,
          );
          break;
        }
        case 'Flatten':
          dx = g.op(
            'Reshape',
            [dz, g.op('Shape', [step.input], { T: { type: CT }, out_type: { type: 'int32' } }, `${name}/in_shape`)],
            { ...TC, Tshape: { type: 'int32' } },
            `${name}/d_input`,
          );
          break;
        case 'Dropout':
          if (step.mask) dx = g.op('Mul', [dz, step.mask], TC, `${name}/d_input`);
          break;
        default:
          break;
      }
      dy = dx;
    }
    const gradNames = trainable.map((v, k) => {
      const grad = grads.get(v);
      if (!grad) throw new GraphCompileError(`no gradient reaches weight '${variables[v]!.name}' of model '${model.name}'`);
      return g.op('Identity', [grad], F32, `grad/${k}`);
    });
    const fedGrads = trainable.map((v, k) => g.placeholder(`grad_in/${k}`, 'float', variables[v]!.shape));

    // Optimizer slots, zero-initialised or restored through slot_init/<k>.
    trainable.forEach((v, k) => {
      const handles: string[] = [];
      for (let s = 0; s < slotsPerVariable; s++) {
        const slot = k * slotsPerVariable + s;
        const handle = g.op(
          'VarHandleOp',
          [],
          { dtype: { type: 'float' }, shape: { shape: variables[v]!.shape }, shared_name: { s: `slot${slot}` }, container: { s: '' } },
          `slot/${slot}`,
        );
        handles.push(handle);
        g.op('ReadVariableOp', [handle], { dtype: { type: 'float' } }, `slot_read/${slot}`);
        slotInits.push(
          g.op(
            'AssignVariableOp',
            [handle, g.placeholder(`slot_init/${slot}`, 'float', variables[v]!.shape)],
            { dtype: { type: 'float' } },
            `slot_assign/${slot}`,
          ),
        );
      }
      slotHandles.push(handles);
    });
    const lr = g.placeholder('lr', 'float', []);
    const b1p = g.placeholder('beta1_power', 'float', []);
    const b2p = g.placeholder('beta2_power', 'float', []);
    const c = (name: string, v: number) => g.constFloat(name, [v], []);
    const hyper = {
      beta1: c('beta1', 0.9),
      beta2: c('beta2', 0.999),
      epsilon: c('epsilon', 1e-7),
      momentum: c('momentum', 0.9),
      rho: c('rho', 0.9),
      zeroMomentum: c('rms_momentum', 0),
    };
    const applyWith = (gradients: string[], group: string) => {
      const updates = trainable.map((v, k) => {
        const [s0, s1] = slotHandles[k]!;
        const grad = gradients[k]!;
        const locking = { use_locking: { b: false } };
        switch (options.optimizer ?? 'adam') {
          case 'adam':
            return g.op(
              'ResourceApplyAdam',
              [handles[v]!, s0!, s1!, b1p, b2p, lr, hyper.beta1, hyper.beta2, hyper.epsilon, grad],
              { ...F32, ...locking, use_nesterov: { b: false } },
              `${group}/${v}`,
            );
          case 'sgd':
            return g.op('ResourceApplyGradientDescent', [handles[v]!, lr, grad], { ...F32, ...locking }, `${group}/${v}`);
          case 'momentum':
            return g.op(
              'ResourceApplyMomentum',
              [handles[v]!, s0!, lr, grad, hyper.momentum],
              { ...F32, ...locking, use_nesterov: { b: false } },
              `${group}/${v}`,
            );
          default:
            return g.op(
              'ResourceApplyRMSProp',
              [handles[v]!, s0!, s1!, lr, hyper.rho, hyper.zeroMomentum, hyper.epsilon, grad],
              { ...F32, ...locking },
              `${group}/${v}`,
            );
        }
      });
      g.group(group, updates);
    };
    applyWith(gradNames, 'apply_op');
    // The loss and accuracy are read in the same run as the update: make them wait for nothing,
    // but make the update group depend on them so that one run computes both from the same weights.
    g.group('apply', ['apply_op', 'loss_sum', 'correct']);
    applyWith(fedGrads, 'apply_fed');
  }
  g.group('init', inits);
  g.group('slot_init', slotInits);
  return {
    graphDef: g.toGraphDef(),
    inputShape,
    outputSize,
    classes,
    variables,
    slotsPerVariable: options.train ? slotsPerVariable : 0,
    trainable: options.train ? trainable : [],
  };
}

/** Elements per sample of a layer's output. */
