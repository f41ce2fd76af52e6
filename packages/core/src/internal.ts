/**
 * @featherstack/core/internal: the graph compiler and its replicas, for the benchmarks and this
 * package's tests. Not the public surface: shapes and names here change without notice.
 * @internal
 */
export { batchTensors, openReplicas } from './engines.js';
export { type CompiledGraph, compileModel } from './graph/compile.js';
export { GraphReplicas } from './graph/replicas.js';
