/**
 * The order in which an epoch visits a pack's samples, as the streaming loaders do it (WebDataset,
 * tf.data's shuffle): the shards in an order shuffled per epoch, their rows streamed through a
 * shuffle buffer of `buffer` samples. It depends only on (group sizes, seed, epoch, buffer) — not on
 * the data, nor the worker count — so it is computed up front, and an epoch resumed at batch b
 * yields exactly the batches an uninterrupted one yields from b on.
 * @internal
 */
import { CounterRng, epochOrder, Stream } from '@featherstack/common';

/**
 * The visit order of samples grouped into shards: `groups[s]` is the number of consecutive samples
 * in shard s (sample indices are 0… in shard order). Without shuffle: shard order, row order.
 */
export function packOrder(groups: number[], seed: number, epoch: number, shuffle: boolean, buffer: number): Uint32Array {
  const total = groups.reduce((a, b) => a + b, 0);
  const order = new Uint32Array(total);
  const starts: number[] = [];
  let at = 0;
  for (const g of groups) {
    starts.push(at);
    at += g;
  }
  if (!shuffle) {
    for (let i = 0; i < total; i++) order[i] = i;
    return order;
  }
  const shards = epochOrder(groups.length, seed, epoch, true);
  const rng = new CounterRng(seed, epoch, 0, Stream.packBuffer);
  const held = new Uint32Array(Math.max(1, Math.min(buffer, total)));
  let size = 0;
  let out = 0;
  for (const s of shards) {
    for (let i = starts[s]!; i < starts[s]! + groups[s]!; i++) {
      if (size < held.length) {
        held[size++] = i;
        continue;
      }
      // The buffer is full: a random held sample goes out, the incoming one takes its place.
      const j = rng.below(size);
      order[out++] = held[j]!;
      held[j] = i;
    }
  }
  // Drain: random picks from what is left.
  while (size > 0) {
    const j = rng.below(size);
    order[out++] = held[j]!;
    held[j] = held[--size]!;
  }
  return order;
}
