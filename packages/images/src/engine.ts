/**
 * The worker pool behind every flow: a piscina pool of decode workers. Private: flows own one and
 * hand it tasks; callers never see piscina.
 * @internal
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { invalidOption, PoolClosedError } from './errors.js';
import type { DecodeResult, DecodeTask } from './protocol.js';

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

  run(task: DecodeTask, signal?: AbortSignal): Promise<DecodeResult> {
    if (this.closed) return Promise.reject(new PoolClosedError('the image pool is closed'));
    return this.pool.run(task, signal ? { signal } : {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }
}
