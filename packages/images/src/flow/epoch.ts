/**
 * One pass over a flow's samples. The run owns the slot ring while it lasts: it keeps `prefetch`
 * batches in flight on the decode pool, hands them out in order, writes the pixel cache during
 * the first full pass, and on abort or early exit waits until no worker can still write into a
 * slot before the slots are reused.
 */
import type { AugmentSpec } from '../augment.js';
import { type ImageBatch, makeBatch, type BatchLayout } from '../batch/batch.js';
import type { Slot, SlotRing } from '../batch/slot.js';
import { type CacheEncoding, cacheFormatName, cacheSchema, type CacheKey, openPixelCache, type PixelCacheIndex, PixelCacheWriter } from '../cache.js';
import { ImageDecodeError, PoolClosedError } from '../errors.js';
import type { DecodePool } from '../pool/pool.js';
import type { ImageSpec, PixelType } from '../image-spec.js';
import type { DecodeFailure, DecodeTask, Normalization, SampleSource } from '../pool/protocol.js';
import type { TestHooks } from './hooks.js';
import type { OnError, SkippedFile } from './options.js';

/** What one pass augments and normalises, in which order, over how many samples. */
export interface RunSettings {
  augment: AugmentSpec;
  normalization: Normalization;
  shuffle: boolean;
  limit: number;
}

/** What a run needs from its flow. */
export interface EpochContext {
  pool: DecodePool;
  ring: SlotRing;
  image: ImageSpec;
  dtype: PixelType;
  seed: number;
  batchSize: number;
  prefetch: number;
  samples: number;
  classes: Int32Array;
  layout: BatchLayout;
  hooks: TestHooks;
  onError: OnError;
  onSkip: ((file: SkippedFile) => void) | undefined;
  /** Where the samples' pixels come from: files, the finished pixel cache, or the array. */
  sourceFor(samples: number[]): SampleSource | Promise<SampleSource>;
  /**
   * The pixel cache: its path (or null), the key it must match, the index once finished, how rows
   * are stored, the bytes it may take, and what to do when writing it would pass them.
   */
  cache: {
    path: string | null;
    key(): CacheKey;
    index: PixelCacheIndex | null;
    encoding: CacheEncoding;
    budget: number;
    decline(bytes: number, reason: string): void;
  };
}

interface Filled {
  slot: Slot;
  failures: DecodeFailure[];
  /** An encoded cache's rows of the batch, by position. */
  encoded: Uint8Array[] | null;
}

interface Fill {
  slot: Slot;
  epoch: number;
  batch: number;
  order: Uint32Array;
  settings: RunSettings;
  caching: boolean;
  signal: AbortSignal;
}

/** Loads one batch into `slot`, split over the workers so that even one batch in flight uses every core. */
async function fill(ctx: EpochContext, { slot, epoch, batch, order, settings, caching, signal }: Fill): Promise<Filled> {
  const start = batch * ctx.batchSize;
  const size = Math.min(ctx.batchSize, settings.limit - start);
  const chunk = Math.max(1, Math.ceil(size / ctx.pool.workers));
  const tasks: Promise<{ failures: DecodeFailure[]; encoded?: Uint8Array[] }>[] = [];
  const encodes = caching && ctx.cache.encoding.kind !== 'raw';
  const run = async (make: (source: SampleSource) => DecodeTask, samples: number[]) => ctx.pool.run(make(await ctx.sourceFor(samples)), signal);
  for (let pos = 0; pos < size; pos += chunk) {
    const samples: number[] = [];
    for (let i = pos; i < Math.min(size, pos + chunk); i++) {
      const sample = order[start + i]!;
      samples.push(sample);
      slot.samples[i] = sample;
      slot.classIndex[i] = ctx.classes[sample]!;
    }
    const task = (source: SampleSource): DecodeTask => ({
      source,
      samples,
      seed: ctx.seed,
      epoch,
      image: ctx.image,
      augment: settings.augment,
      normalization: settings.normalization,
      target: slot.images,
      dtype: ctx.dtype,
      position: pos,
      attempt: 0,
      ...(encodes ? { cacheEncoding: ctx.cache.encoding } : caching ? { cacheTarget: slot.cache! } : {}),
      ...(ctx.hooks.jitterMs ? { jitterMs: ctx.hooks.jitterMs } : {}),
      ...(ctx.hooks.crashOnAttempt !== undefined ? { crashOnAttempt: ctx.hooks.crashOnAttempt } : {}),
    });
    tasks.push(run(task, samples));
  }
  const results = await Promise.all(tasks);
  // Tasks cover consecutive positions in order: their encoded rows concatenate to the batch's.
  const encoded = encodes ? results.flatMap((r) => r.encoded ?? []) : null;
  return { slot, failures: results.flatMap((r) => r.failures).sort((a, b) => a.position - b.position), encoded };
}

/**
 * Why the cache being written is given up, or null while it fits its budget: the next rows would
 * pass it, or (after the first batch) the bytes per image so far say the whole cache would.
 * Encoded sizes are known only as images are encoded; raw ones were checked before the epoch.
 */
function overBudget(ctx: EpochContext, writer: PixelCacheWriter, written: number, next: number): string | null {
  const { budget, encoding } = ctx.cache;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const what = `pixel cache ${writer.path} (${cacheFormatName(encoding)})`;
  const advice = 'removed, and epochs decode instead (raise cacheBudget, or pick a smaller cache format)';
  if (writer.bytes + next > budget) return `${what} would pass its budget of ${mib(budget)} after ${written} of ${ctx.samples} images: ${advice}`;
  const rows = Math.min(ctx.batchSize, ctx.samples);
  const projected = ((writer.bytes + next) / rows) * ctx.samples;
  if (written === 0 && projected > budget)
    return `${what}: its first ${rows} images took ${mib(next)}, so ${ctx.samples} would need about ${mib(projected)}, more than its budget of ${mib(budget)}: ${advice}`;
  return null;
}

/**
 * The batches of one pass, from batch `from` on, in `order`. Skipped files are pushed to
 * `skipped` as they happen. The pixel cache is written when this is the first full pass.
 */
export async function* runEpoch(
  ctx: EpochContext,
  run: { epoch: number; order: Uint32Array; settings: RunSettings; from: number; signal: AbortSignal | undefined; skipped: SkippedFile[] },
): AsyncGenerator<ImageBatch, void, undefined> {
  const { epoch, order, settings, from, signal } = run;
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const batches = Math.ceil(settings.limit / ctx.batchSize);
  const pending = new Map<number, Promise<Filled>>();
  const sampleSize = ctx.image.height * ctx.image.width * ctx.image.channels;
  // Another flow over the same files (e.g. training, then extraction) may have finished the
  // cache since this one was created; otherwise the first full pass writes it.
  const { cache } = ctx;
  if (cache.path && !cache.index) cache.index = await openPixelCache(cache.path, cache.key());
  let writer =
    cache.path && !cache.index && settings.limit === ctx.samples && from === 0 ? new PixelCacheWriter(cache.path, cacheSchema(sampleSize, cache.key())) : null;
  let written = 0;
  ctx.ring.reset();
  let scheduled = from;
  const schedule = () => {
    while (scheduled < batches && pending.size < ctx.prefetch) {
      const slot = ctx.ring.take(writer !== null);
      const promise = fill(ctx, { slot, epoch, batch: scheduled, order, settings, caching: writer !== null, signal: controller.signal });
      promise.catch(() => {}); // observed when awaited; avoid an unhandled rejection meanwhile
      pending.set(scheduled++, promise);
    }
  };
  let complete = false;
  try {
    for (let b = from; b < batches; b++) {
      schedule();
      if (controller.signal.aborted) throw controller.signal.reason ?? new PoolClosedError('iteration aborted');
      let result: Filled;
      try {
        result = await pending.get(b)!;
      } catch (error) {
        // An abort rejects the in-flight tasks with the pool's own error: report the caller's reason.
        throw controller.signal.aborted ? (controller.signal.reason ?? error) : error;
      }
      const { slot, failures, encoded } = result;
      pending.delete(b);
      if (failures.length > 0 && ctx.onError === 'raise') throw new ImageDecodeError(failures[0]!.path, failures[0]!.reason);
      for (const f of failures) {
        const skipped = { epoch, path: f.path, filename: ctx.layout.pathOf(slot.samples[f.position]!), reason: f.reason };
        run.skipped.push(skipped);
        ctx.onSkip?.(skipped);
      }
      const size = Math.min(ctx.batchSize, settings.limit - b * ctx.batchSize);
      if (writer) {
        const rows = encoded ?? new Uint8Array(slot.cache!, 0, size * sampleSize);
        const next = encoded ? encoded.reduce((n, e) => n + e.length, 0) : rows.length;
        const reason = overBudget(ctx, writer, written, next);
        if (reason) {
          // Given up before a byte past the budget is written: the partial file goes, epochs decode.
          await writer.abort();
          writer = null;
          cache.decline(next, reason);
          process.emitWarning(reason, { code: 'FEATHERSTACK_CACHE_OVER_BUDGET' });
        } else {
          const reasons = new Array<string | null>(size).fill(null);
          for (const f of failures) reasons[f.position] = f.reason;
          writer.write(slot.samples.subarray(0, size), rows, reasons);
          written += size;
        }
      }
      const batch = makeBatch(slot, ctx.layout, epoch, b, size, new Set(failures.map((f) => f.position)));
      if (batch.size > 0) yield batch;
      ctx.ring.give(slot);
    }
    complete = true;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    controller.abort(new PoolClosedError('iteration ended'));
    // Wait until no worker can still write into a slot before the slots are reused.
    await Promise.allSettled(pending.values());
    if (writer && complete) {
      await writer.finish();
      cache.index = await openPixelCache(writer.path, cache.key());
    } else await writer?.abort();
  }
}
