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
 * - TensorFlow threads are the trainer's business: @featherstack/tensorflow's planThreads() lays out
 *   replicas, TensorFlow threads and decode workers together.
 */
import { availableParallelism } from 'node:os';

export const DEFAULT_UV_THREADPOOL_SIZE = Math.max(4, availableParallelism() + 2);
process.env.UV_THREADPOOL_SIZE ??= String(DEFAULT_UV_THREADPOOL_SIZE);
