/**
 * @featherstack/cluster — feature extraction beyond one machine: shards on a BullMQ job queue on
 * Redis, a coordinator that lists once and checks the complete set, workers on any number of
 * machines writing shard files to a shared directory.
 */
export { admitJob, JobRefusedError, MAX_JOB_BYTES, MAX_SHARD_ROWS, resolveRoots, type WorkerRoots } from './admit.js';
export { checkReachable, parseQueueUrl, type QueueConnection, QueueConnectionError, queueUrlFromConfig, unprotectedWarning } from './connection.js';
export {
  buildPixelCacheDistributed,
  type DistributedExtractOptions,
  type ExtractSetProgress,
  type ExtractSetResult,
  extractDistributed,
  verifyShardSet,
  damagedShards,
  type ShardSetExpectation,
} from './coordinator.js';
export { type DistributedPackOptions, type DistributedPackResult, packDistributed } from './pack.js';
export { modelFileHash, QUEUE_NAME, type ShardJob, type ShardProgress } from './jobs.js';
export { type QueueStatus, queueStatus } from './status.js';
export { DirectoryStore, type ShardStore, shardName } from './store.js';
export { type RunningWorker, startWorker, type WorkerOptions } from './worker.js';
