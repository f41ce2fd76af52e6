/**
 * Test hooks, kept out of the public options: a random delay per task (to reorder worker
 * completions) and a worker that exits on its first attempts (to exercise the retry). Tests set
 * them on a flow with setTestHooks (imported from the built module, not the package entry).
 * @internal
 */
export interface TestHooks {
  /** Random delay of up to n ms per task. */
  jitterMs?: number;
  /** The worker exits on every attempt ≤ n (0 = first try only). */
  crashOnAttempt?: number;
}

const hooks = new WeakMap<object, TestHooks>();

export function setTestHooks(flow: object, value: TestHooks): void {
  hooks.set(flow, value);
}

export function testHooksOf(flow: object): TestHooks {
  return hooks.get(flow) ?? {};
}
