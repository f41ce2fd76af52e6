/**
 * One pass over a flow's samples. The run owns the slot ring while it lasts: it keeps `prefetch`
 * batches in flight on the decode pool, hands them out in order, writes the pixel cache during
 * the first full pass, and on abort or early exit waits until no worker can still write into a
 * slot before the slots are reused.
 */
import type { AugmentSpec } from '../augment.js';
import { type ImageBatch, makeBatch, type BatchLayout } from '../batch/batch.js';
import type { Slot, SlotRing } from '../batch/slot.js';
import { cacheSchema, type CacheKey, openPixelCache, type PixelCacheIndex, PixelCacheWriter } from '../cache.js';
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
  /** The pixel cache: its path (or null), the key it must match, and the index once finished. */
  cache: { path: string | null; key(): CacheKey; index: PixelCacheIndex | null };
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
async function fill(ctx: EpochContext, { slot, epoch, batch, order, settings, caching, signal }: Fill): Promise<{ slot: Slot; failures: DecodeFailure[] }> {
  const start = batch * ctx.batchSize;
  const size = Math.min(ctx.batchSize, settings.limit - start);
  const chunk = Math.max(1, Math.ceil(size / ctx.pool.workers));
  const tasks: Promise<{ failures: DecodeFailure[] }>[] = [];
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
      ...(caching ? { cacheTarget: slot.cache! } : {}),
      ...(ctx.hooks.jitterMs ? { jitterMs: ctx.hooks.jitterMs } : {}),
      ...(ctx.hooks.crashOnAttempt !== undefined ? { crashOnAttempt: ctx.hooks.crashOnAttempt } : {}),
    });
    tasks.push(run(task, samples));
  }
  const results = await Promise.all(tasks);
  return { slot, failures: results.flatMap((r) => r.failures).sort((a, b) => a.position - b.position) };
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
  const pending = new Map<number, Promise<{ slot: Slot; failures: DecodeFailure[] }>>();
  const sampleSize = ctx.image.height * ctx.image.width * ctx.image.channels;
  // Another flow over the same files (e.g. training, then extraction) may have finished the
  // cache since this one was created; otherwise the first full pass writes it.
  const { cache } = ctx;
  if (cache.path && !cache.index) cache.index = await openPixelCache(cache.path, cache.key());
  const writer =
    cache.path && !cache.index && settings.limit === ctx.samples && from === 0 ? new PixelCacheWriter(cache.path, cacheSchema(sampleSize, cache.key())) : null;
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
      let result: { slot: Slot; failures: DecodeFailure[] };
      try {
        result = await pending.get(b)!;
      } catch (error) {
        // An abort rejects the in-flight tasks with the pool's own error: report the caller's reason.
        throw controller.signal.aborted ? (controller.signal.reason ?? error) : error;
      }
      const { slot, failures } = result;
      pending.delete(b);
      if (failures.length > 0 && ctx.onError === 'raise') throw new ImageDecodeError(failures[0]!.path, failures[0]!.reason);
      for (const f of failures) {
        const skipped = { epoch, path: f.path, filename: ctx.layout.pathOf(slot.samples[f.position]!), reason: f.reason };
        run.skipped.push(skipped);
        ctx.onSkip?.(skipped);
      }
      const size = Math.min(ctx.batchSize, settings.limit - b * ctx.batchSize);
      if (writer) {
        const reasons = new Array<string | null>(size).fill(null);
        for (const f of failures) reasons[f.position] = f.reason;
        writer.write(slot.samples.subarray(0, size), new Uint8Array(slot.cache!, 0, size * sampleSize), reasons);
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
