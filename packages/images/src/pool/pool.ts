/**
 * The decode worker pool: a piscina pool of workers (worker.ts) that load, augment and write
 * samples straight into a batch's shared slot. ImagePool is the handle callers share between
 * flows; DecodePool, behind it, is private: callers never see piscina.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { invalidOption, PoolClosedError, WorkerCrashError } from '../errors.js';
import { type DecodeResult, type DecodeTask, LOADED } from './protocol.js';

function describeSource(task: DecodeTask): string {
  const { source } = task;
  if (source.kind === 'files') return source.paths.map((p) => `${source.root}/${p}`).join(', ');
  if (source.kind === 'cache') return `${source.paths.join(', ')} (from pixel cache ${source.file})`;
  return `samples ${task.samples.join(', ')} of the in-memory dataset`;
}

export function resolveWorkers(value: unknown): number {
  if (value === undefined) return availableParallelism();
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidOption('workers', 'a positive integer', value);
  }
  // Each worker is a thread with its own heap and decode buffers: past a few per core they only
  // add memory (a thousand of them grew past 6 GB before decoding anything).
  const cores = availableParallelism();
  if (value > 4 * cores) throw invalidOption('workers', `at most ${4 * cores} (4 per core on ${cores} cores)`, value);
  return value;
}

/** @internal */
export class DecodePool {
  private readonly pool: Piscina<DecodeTask, DecodeResult>;
  private closed = false;
  readonly workers: number;
  /** Tasks retried after a worker died. */
  retries = 0;
  /** Workers that stopped before the pool closed (crashed, and were replaced). */
  workersLost = 0;
  /** Tasks handed to piscina and not yet settled: at most one per worker. */
  private running = 0;
  /** Tasks waiting for a free worker, in order; an abort or close removes them before they start. */
  private readonly waiting: { start: () => void; fail: (reason: unknown) => void }[] = [];
  /** Threads that have finished loading their modules (the worker posts LOADED). */
  private readonly loaded = new Set<number>();
  private onLoaded?: () => void;

  constructor(workers: number) {
    this.workers = workers;
    this.pool = new Piscina({
      filename: new URL('./worker.js', import.meta.url).href,
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
    this.pool.on('workerDestroy', () => {
      if (!this.closed) this.workersLost++;
      // A thread that died while starting never posts LOADED; close() stops waiting for it.
      queueMicrotask(() => this.onLoaded?.());
    });
    this.pool.on('message', (message: unknown) => {
      const id = (message as Record<string, unknown> | null)?.[LOADED];
      if (typeof id !== 'number') return;
      this.loaded.add(id);
      this.onLoaded?.();
    });
  }

  /**
   * Runs a task. A task whose worker died (or threw outside the per-image error handling) is
   * retried once on a replacement worker — piscina replaces dead workers itself; a second failure
   * rejects with a WorkerCrashError naming the task's files.
   *
   * An abort cancels the tasks that have not started and lets running ones finish (a task is a
   * few images): piscina would abort a running task by terminating its worker, and a worker
   * terminated inside native code (zlib's inflate of an in-worker PNG decode) can abort the whole
   * process while Node tears the thread down. Finishing also means that when the returned
   * promise settles, no worker writes into the task's memory any more.
   */
  async run(task: DecodeTask, signal?: AbortSignal): Promise<DecodeResult> {
    if (this.closed) throw new PoolClosedError('the image pool is closed');
    await this.turn(signal);
    try {
      try {
        return await this.pool.run(task);
      } catch (first) {
        if (this.closed || signal?.aborted) throw first;
        this.retries++;
        try {
          return await this.pool.run({ ...task, attempt: task.attempt + 1 });
        } catch (second) {
          if (this.closed || signal?.aborted) throw second;
          throw new WorkerCrashError(describeSource(task), (first as Error).message, (second as Error).message);
        }
      }
    } finally {
      this.running--;
      this.waiting.shift()?.start();
    }
  }

  /** Resolves when a worker is free for this task (counted as running); rejects on abort or close. */
  private turn(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new PoolClosedError('task aborted'));
    if (this.running < this.workers) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.running++;
          resolve();
        },
        fail: (reason: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        entry.fail(signal?.reason ?? new PoolClosedError('task aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Closes the pool: waiting tasks are rejected, running ones finish, then the workers exit. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.waiting.splice(0)) entry.fail(new PoolClosedError('the image pool is closed'));
    await this.startedUp();
    // Not destroy(): that terminates workers mid-task (see run()). close() waits for running tasks,
    // up to piscina's closeTimeout (30 s), and only then terminates what is left.
    await this.pool.close({ force: true });
  }

  /**
   * Resolves once every live thread has loaded its modules, or after 30 s. The workers start with
   * the pool; one terminated while Node is still instantiating its ES modules aborts the whole
   * process ("v8::Module::IsGraphAsync must be used on an instantiated module"), so a pool closed
   * right after it opened (a run refused before its first batch) waits for them.
   */
  private startedUp(): Promise<void> {
    const pending = () => this.pool.threads.some((thread) => !this.loaded.has(thread.threadId));
    if (!pending()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onLoaded = undefined;
        resolve();
      };
      const timer = setTimeout(done, 30_000);
      this.onLoaded = () => {
        if (!pending()) done();
      };
    });
  }
}

const pools = new WeakMap<ImagePool, DecodePool>();

/** @internal The DecodePool behind a handle. */
export function poolOf(handle: ImagePool): DecodePool {
  return pools.get(handle)!;
}

/** A decode worker pool that several flows share. Close it when every flow is done. */
export class ImagePool {
  readonly workers: number;
  /** @internal Use createImagePool(). */
  constructor(workers: number) {
    this.workers = workers;
    pools.set(this, new DecodePool(workers));
  }

  /** Tasks retried because their worker died. */
  get retries(): number {
    return poolOf(this).retries;
  }

  /** Workers that stopped before the pool closed (crashed, and were replaced). */
  get workersLost(): number {
    return poolOf(this).workersLost;
  }

  close(): Promise<void> {
    return poolOf(this).close();
  }
}

/**
 * Starts a pool of decode workers to share between flows.
 *
 * @example
 * const pool = createImagePool({ workers: 4 });
 * const train = await flowFromDirectory('data/train', { pool });
 */
export function createImagePool(options: { workers?: number } = {}): ImagePool {
  return new ImagePool(resolveWorkers(options.workers));
}
