/** The tfjs-node types featherstack's packages name, in one module that imports nothing of ours. */
/** The tfjs-node namespace: `tf.layers`, `tf.tensor`, `tf.node`, … */
export type Tf = typeof import('@tensorflow/tfjs-node');
export type {
  LayersModel,
  Logs,
  Rank,
  Sequential,
  SymbolicTensor,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor4D,
} from '@tensorflow/tfjs-node';
