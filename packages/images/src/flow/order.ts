/**
 * Which samples a flow visits, and in which order: its source (files, a pixel cache, an array),
 * cut to one shard of a dataset, and shuffled per epoch by the seeded RNG (common's epochOrder).
 */
import type { PixelCacheIndex } from '../cache.js';
import { invalidOption } from '../errors.js';
import type { PixelType } from '../image-spec.js';
import type { PackSource } from '../pack/read.js';
import type { Manifest } from '../sources/directory.js';

/** Where a flow's samples come from. @internal */
export interface FlowSource {
  manifest: Manifest;
  /** Numeric targets of raw / multi_output manifests, one array per output. */
  targets?: Float32Array[];
  outputWidths?: number[];
  array?: { data: SharedArrayBuffer; dtype: PixelType; height: number; width: number; channels: 1 | 3 | 4 };
  cacheIndex?: PixelCacheIndex | null;
  /** A pack's shards (flowFromPack): epochs stream them instead of opening files. */
  pack?: PackSource;
}

/** The samples of `source` in shard `shard` (all of them without one). */
/** Shard `index` of `count` (0-based): the rows a machine of a set reads. */
export interface Shard {
  index: number;
  count: number;
}

/** `shard` checked: integers with 0 ≤ index < count, refused by name otherwise. */
export function checkShard(shard: Shard): Shard {
  const { index, count } = shard ?? {};
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw invalidOption('shard', '{ index, count } with integers 0 ≤ index < count', shard);
  }
  return shard;
}

export function shardOf(source: FlowSource, shard: Shard | undefined): FlowSource {
  if (shard === undefined) return source;
  const { index, count } = checkShard(shard);
  if (source.array) throw invalidOption('shard', 'unset for in-memory arrays (slice the array instead)', shard);
  if (source.pack) throw invalidOption('shard', 'given to flowFromPack, which shards by pack shard', shard);
  const keep = source.manifest.paths.map((_, i) => i).filter((i) => i % count === index);
  const { manifest } = source;
  return {
    ...source,
    manifest: { ...manifest, paths: keep.map((i) => manifest.paths[i]!), labels: Int32Array.from(keep, (i) => manifest.labels[i]!) },
    ...(source.targets
      ? {
          targets: source.targets.map((t, k) => {
            const w = source.outputWidths![k]!;
            const out = new Float32Array(keep.length * w);
            for (const [j, i] of keep.entries()) out.set(t.subarray(i * w, (i + 1) * w), j * w);
            return out;
          }),
        }
      : {}),
  };
}
