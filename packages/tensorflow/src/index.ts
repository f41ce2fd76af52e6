/**
 * @featherstack/tensorflow: native TensorFlow for featherstack (load.ts is the only module that loads
 * `@tensorflow/tfjs-node`).
 *
 * TensorFlow reads its thread-pool sizes (`TF_NUM_INTRAOP_THREADS`, `TF_NUM_INTEROP_THREADS`) and
 * log level once, when the native library loads, so every setting is applied here, before the
 * first `require`, and later calls with different settings are refused rather than ignored.
 */
export { reluGrad } from './gradients.js';
export { F32, GraphBuilder } from './graph/builder.js';
export type { Attr, DType, NodeDef } from './graph/proto.js';
export { MOMENTUM, OPTIMIZER_CHOICES, type OptimizerKind, OPTIMIZERS } from './optimizers.js';
export { planExtraction, planThreads, THREADS_PER_REPLICA_CAP, type ThreadPlan, type ThreadPlanOptions } from './plan.js';
export { type Feed, GraphSession, openSession, type SessionOptions, sumInto } from './graph/session.js';

export { ModelFileError, NativeTensorFlowError, TensorFlowOptionError } from './errors.js';
export { checkModelFiles } from './model-files.js';

export type { LayersModel, Logs, Rank, Sequential, SymbolicTensor, Tensor, Tensor1D, Tensor2D, Tensor4D, Tf } from './tf.js';
export * from './load.js';
