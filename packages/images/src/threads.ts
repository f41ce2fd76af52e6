/**
 * How the image pipeline shares the cores, with every knob overridable. Imported first by the
 * package entry so the libuv sizing happens before any asynchronous I/O starts the thread pool.
 *
 * - Decode workers: one per core (options.workers).
 * - libvips threads per image: 1 (FEATHERSTACK_VIPS_THREADS): workers already run images in
 *   parallel, so libvips' own threads would multiply them.
 * - libuv thread pool: sharp runs every decode on it, and all worker threads share it (default 4
 *   threads): with more workers than that, decodes would queue behind each other. It is sized to
 *   cores + 2 unless UV_THREADPOOL_SIZE is set, and only takes effect if nothing has used the pool
 *   before this package was imported.
 * - TensorFlow threads are the trainer's business (see @featherstack/tensorflow's loadTensorFlow);
 *   `threadPlan()` shows the whole picture.
 */
import { availableParallelism } from 'node:os';

export const DEFAULT_UV_THREADPOOL_SIZE = Math.max(4, availableParallelism() + 2);
process.env.UV_THREADPOOL_SIZE ??= String(DEFAULT_UV_THREADPOOL_SIZE);

export interface ThreadPlan {
  cores: number;
  decodeWorkers: number;
  vipsThreadsPerWorker: number;
  uvThreadpoolSize: number;
  /** Threads that can run at once while only the pipeline works. */
  pipelineThreads: number;
  /** True when the decode workers alone ask for more threads than there are cores. */
  oversubscribed: boolean;
}

/** The thread layout a flow with `workers` decode workers uses on this machine. */
export function threadPlan(workers = availableParallelism()): ThreadPlan {
  const cores = availableParallelism();
  const vips = Number(process.env.FEATHERSTACK_VIPS_THREADS ?? 1);
  const uv = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const pipelineThreads = Math.min(workers, uv) * vips;
  return { cores, decodeWorkers: workers, vipsThreadsPerWorker: vips, uvThreadpoolSize: uv, pipelineThreads, oversubscribed: workers * vips > cores };
}
