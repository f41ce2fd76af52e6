/**
 * The worker pool behind every flow: a piscina pool of decode workers. Private: flows own one and
 * hand it tasks; callers never see piscina.
 * @internal
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { invalidOption, PoolClosedError, WorkerCrashError } from './errors.js';
import type { DecodeResult, DecodeTask } from './protocol.js';

function describeSource(task: DecodeTask): string {
  const { source } = task;
  if (source.kind === 'files') return source.paths.map((p) => `${source.root}/${p}`).join(', ');
  if (source.kind === 'cache') return `${source.paths.join(', ')} (from pixel cache ${source.file})`;
  return `samples ${task.samples.join(', ')} of the in-memory dataset`;
}

export interface PoolOptions {
  /** Decode workers. Default: every core. */
  workers?: number;
}

export function resolveWorkers(value: unknown): number {
  if (value === undefined) return availableParallelism();
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidOption('workers', 'a positive integer', value);
  }
  return value;
}

export class DecodePool {
  private readonly pool: Piscina<DecodeTask, DecodeResult>;
  private closed = false;
  readonly workers: number;
  /** Tasks retried after a worker died. */
  retries = 0;

  constructor(workers: number) {
    this.workers = workers;
    this.pool = new Piscina({
      filename: new URL('./worker/decode.js', import.meta.url).href,
      minThreads: workers,
      maxThreads: workers,
      idleTimeout: 60_000,
      // Each worker runs one task at a time: a task is already a run of several images.
      concurrentTasksPerWorker: 1,
    });
    // A worker that fails outside a task (e.g. at start-up) is also reported as a pool 'error'
    // event; piscina already rejects the tasks it held (that is how callers learn of it), so the
    // event only needs a listener to keep it from crashing the process as unhandled.
    this.pool.on('error', () => {});
  }

  /**
   * Runs a task. A task whose worker died (or threw outside the per-image error handling) is
   * retried once on a replacement worker — piscina replaces dead workers itself; a second failure
   * rejects with a WorkerCrashError naming the task's files.
   */
  async run(task: DecodeTask, signal?: AbortSignal): Promise<DecodeResult> {
    if (this.closed) throw new PoolClosedError('the image pool is closed');
    const options = signal ? { signal } : {};
    try {
      return await this.pool.run(task, options);
    } catch (first) {
      if (this.closed || signal?.aborted) throw first;
      this.retries++;
      try {
        return await this.pool.run({ ...task, attempt: task.attempt + 1 }, options);
      } catch (second) {
        if (this.closed || signal?.aborted) throw second;
        throw new WorkerCrashError(describeSource(task), (first as Error).message, (second as Error).message);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }
}
