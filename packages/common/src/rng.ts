/**
 * Counter-based random numbers: every draw is a pure function of (seed, epoch, sample, stream,
 * counter). No generator state is shared between samples, so a sample's augmentation does not
 * depend on which worker handled it or in which order samples finished: batches are bit-identical
 * for 1, 2 or N workers.
 *
 * The mixer is the murmur3/splitmix finaliser applied to a chain of 32-bit keys; it passes the
 * avalanche property needed here (neighbouring counters give unrelated outputs). The one seeded
 * generator of featherstack: image order and augmentation, head shuffles, stream buffers.
 */

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes a list of integer keys (each taken modulo 2^32) into one uint32. */
export function hashKeys(...keys: number[]): number {
  let h = 0x9e3779b9;
  for (const key of keys) {
    h = mix32((h ^ mix32((key >>> 0) + 0x6a09e667)) + 0x3c6ef372);
  }
  return h;
}

/** Streams of draws, one per purpose, so adding a draw to one never shifts another. */
export const Stream = {
  shuffle: 1,
  augment: 2,
  crop: 3,
  /** The head's streamed shuffle buffer. */
  headBuffer: 4,
  /** A pack flow's shuffle buffer. */
  packBuffer: 5,
} as const;

/**
 * A deterministic source of uniform numbers for one (seed, epoch, sample, stream) key.
 * Draw i is hashKeys(key…, i): the sequence can be regenerated anywhere.
 */
export class CounterRng {
  private counter = 0;
  private readonly base: number;

  constructor(seed: number, epoch: number, sample: number, stream: number) {
    this.base = hashKeys(seed, epoch, sample, stream);
  }

  /** A uint32. */
  nextUint32(): number {
    return mix32(this.base ^ mix32(this.counter++ + 0x510e527f));
  }

  /** A double uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer uniform in [0, n) without modulo bias. */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * The order in which an epoch visits `n` samples: a Fisher–Yates shuffle keyed by (seed, epoch).
 * Without a seed-based shuffle the identity order is returned.
 */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new CounterRng(seed, epoch, 0, Stream.shuffle);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}
