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

/**
 * A value from a job as text safe for a terminal: jobs are data anyone with access to Redis can
 * write, so control characters (escape sequences) are shown as \u escapes, and long text is cut.
 */
export function printable(value: unknown, max = 300): string {
  const text = typeof value === 'string' ? value : value === undefined || value === null ? '?' : String(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

/** A shard number from a job, or -1 when the job holds none (a job written by something else). */
function index(value: unknown): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : -1;
}

export async function queueStatus(connection: QueueConnection, queueName = QUEUE_NAME): Promise<QueueStatus> {
  await checkReachable(connection);
  const queue = new Queue<ShardJob>(queueName, { connection: connection.options });
  try {
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    // Every field read defensively: a job without data, or with other data, is shown, not fatal.
    const active = (await queue.getJobs(['active'])).filter(Boolean).map((job) => {
      const d = (job.data ?? {}) as Partial<ShardJob>;
      const p = job.progress as Partial<ShardProgress> | number | undefined;
      const worker = job.processedBy ?? (typeof p === 'object' ? p?.worker : null);
      return {
        set: printable(d.set),
        shard: index(d.shard?.index),
        of: index(d.shard?.count),
        // BullMQ records the worker's name when it takes the job; progress repeats it once rows flow.
        worker: worker ? printable(worker, 120) : null,
        rows: typeof p === 'object' && typeof p?.rows === 'number' ? p.rows : 0,
        total: Array.isArray(d.paths) ? d.paths.length : 0,
      };
    });
    const failed = (await queue.getJobs(['failed'])).filter(Boolean).map((job) => ({
      set: printable((job.data as Partial<ShardJob> | undefined)?.set),
      shard: index((job.data as Partial<ShardJob> | undefined)?.shard?.index),
      reason: printable(job.failedReason),
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
