/** `featherstack queue status`: jobs waiting, active, failed and done, and which worker holds which shard. */
import { Queue } from 'bullmq';
import { checkReachable, type QueueConnection } from './connection.js';
import { QUEUE_NAME, type ShardJob, type ShardProgress } from './jobs.js';

export interface QueueStatus {
  queue: string;
  counts: { waiting: number; active: number; delayed: number; failed: number; completed: number };
  active: { set: string; shard: number; of: number; worker: string | null; rows: number; total: number }[];
  failed: { set: string; shard: number; reason: string; attempts: number }[];
}

export async function queueStatus(connection: QueueConnection, queueName = QUEUE_NAME): Promise<QueueStatus> {
  await checkReachable(connection);
  const queue = new Queue<ShardJob>(queueName, { connection: connection.options });
  try {
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    const active = (await queue.getJobs(['active'])).map((job) => {
      const p = job.progress as ShardProgress | number | undefined;
      return {
        set: job.data.set,
        shard: job.data.shard.index,
        of: job.data.shard.count,
        // BullMQ records the worker's name when it takes the job; progress repeats it once rows flow.
        worker: job.processedBy ?? (typeof p === 'object' ? p.worker : null),
        rows: typeof p === 'object' ? p.rows : 0,
        total: job.data.paths.length,
      };
    });
    const failed = (await queue.getJobs(['failed'])).map((job) => ({
      set: job.data.set,
      shard: job.data.shard.index,
      reason: job.failedReason,
      attempts: job.attemptsMade,
    }));
    return {
      queue: queueName,
      counts: { waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, failed: c.failed ?? 0, completed: c.completed ?? 0 },
      active,
      failed,
    };
  } finally {
    await queue.close();
  }
}
