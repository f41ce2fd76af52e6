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
    // A worker that fails outside a task (e.g. at start-up) is reported here; the tasks it held are
    // rejected by piscina and the worker is replaced. Keep the error for close() instead of letting
    // it crash the process as an unhandled 'error' event.
    this.pool.on('error', (error: Error) => {
      this.lastError = error;
    });
  }

  /** The last error raised by a worker outside a task, if any. */
  lastError: Error | undefined;

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
