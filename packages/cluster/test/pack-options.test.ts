import { SHIPPED_VAL } from '@featherstack/fixtures';
import { describe, expect, it } from 'vitest';
import { packDistributed, parseQueueUrl } from '../src/index.js';

// Refused before the queue is reached: no Redis listens on this port.
const connection = parseQueueUrl('redis://127.0.0.1:1');

describe('packDistributed options', () => {
  it.each([
    [{ shardBytes: 0 }, /options\.shardBytes must be an integer from 1 to 1 GiB, received 0/],
    [{ shardBytes: 2 ** 31 }, /options\.shardBytes must be an integer from 1 to 1 GiB/],
    [{ seed: 1.5 }, /options\.seed must be an integer, received 1\.5/],
    [{ quality: 101 }, /options\.quality must be an integer from 1 to 100, received 101/],
    [{ maxSide: 0 }, /options\.maxSide must be a positive integer number of pixels, received 0/],
  ])('refuses %o by name, as packDataset does', async (bad, message) => {
    await expect(packDistributed({ connection, data: SHIPPED_VAL, out: '/nonexistent/pack', ...bad })).rejects.toThrow(message);
  });
});
