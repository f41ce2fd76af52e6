import { describe, expect, it } from 'vitest';
import { F32, GraphBuilder, loadTensorFlow, openSession, planExtraction, planThreads, sumInto, tensorflowReport } from '../dist/index.js';

loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });

function reluGraph() {
  const g = new GraphBuilder();
  const x = g.placeholder('x', 'float', [null, 3]);
  const handle = g.op('VarHandleOp', [], { dtype: { type: 'float' }, shape: { shape: [3] }, shared_name: { s: 'w' }, container: { s: '' } }, 'w');
  g.op('AssignVariableOp', [handle, g.placeholder('w_init', 'float', [3])], { dtype: { type: 'float' } }, 'w_assign');
  const w = g.op('ReadVariableOp', [handle], { dtype: { type: 'float' } }, 'w_read');
  g.op('Relu', [g.op('Mul', [x, w], F32)], F32, 'y');
  return g.toGraphDef();
}

describe('native graph sessions', () => {
  it('runs a graph built in JavaScript: feeds, variables, fetches into caller memory', async () => {
    const session = openSession(reluGraph(), { intraOpThreads: 1, interOpThreads: 1 });
    await session.run({ w_init: { data: Float32Array.of(1, -1, 2), shape: [3] } }, {}, ['w_assign']);
    const out = new Float32Array(new SharedArrayBuffer(6 * 4));
    await session.run({ x: { data: Float32Array.of(1, 2, 3, -1, -2, -3), shape: [2, 3] } }, { y: out });
    expect(Array.from(out)).toEqual([1, 0, 6, 0, 2, 0]);
    await session.close();
    await expect(session.run({}, { y: out })).rejects.toThrow('this session is closed');
  });

  it('names what is wrong: an unknown op, a wrong-sized destination, a failing step (with the caller’s stack)', async () => {
    const session = openSession(reluGraph(), { intraOpThreads: 1, interOpThreads: 1 });
    await expect(session.run({ nope: { data: new Float32Array(3), shape: [3] } })).rejects.toThrow("no operation named 'nope' to feed");
    await expect(session.run({ x: { data: new Float32Array(4), shape: [2, 3] } })).rejects.toThrow("feed 'x': its shape does not match its array's length");
    await session.run({ w_init: { data: Float32Array.of(1, 1, 1), shape: [3] } }, {}, ['w_assign']);
    await expect(session.run({ x: { data: new Float32Array(3), shape: [1, 3] } }, { y: new Float32Array(2) })).rejects.toThrow(
      "fetch 'y' has 12 bytes but its destination has 8",
    );
    const failed = session.run({ x: { data: new Float32Array(4), shape: [1, 4] } }, { y: new Float32Array(4) });
    await expect(failed).rejects.toThrow(/TensorFlow step failed: .*(shape|Incompatible|compatible)/i);
    await failed.catch((error: Error) => expect(error.stack).toContain('graph-session.test'));
    await session.close();
    expect(() => openSession(Uint8Array.of(1, 2, 3), { intraOpThreads: 1, interOpThreads: 1 })).toThrow('TensorFlow refused the graph');
    expect(() => openSession(reluGraph(), { intraOpThreads: 0, interOpThreads: 1 })).toThrow('options.intraOpThreads must be a positive integer, received 0');
  });

  it('runs a step on the calling thread (runSync, every op in the caller with interOpThreads caller), as run does', async () => {
    const session = openSession(reluGraph(), { intraOpThreads: 1, interOpThreads: 'caller' });
    session.runSync({ w_init: { data: Float32Array.of(1, -1, 2), shape: [3] } }, {}, ['w_assign']);
    const out = new Float32Array(6);
    session.runSync({ x: { data: Float32Array.of(1, 2, 3, -1, -2, -3), shape: [2, 3] } }, { y: out });
    expect(Array.from(out)).toEqual([1, 0, 6, 0, 2, 0]);
    // The same session also runs asynchronously; while such a run is in flight, runSync refuses.
    const again = new Float32Array(6);
    const pending = session.run({ x: { data: Float32Array.of(1, 2, 3, -1, -2, -3), shape: [2, 3] } }, { y: again });
    expect(() => session.runSync({ x: { data: new Float32Array(3), shape: [1, 3] } }, { y: new Float32Array(3) })).toThrow(
      'runSync(): 1 asynchronous run(s) of this session are not finished',
    );
    await pending;
    expect(again).toEqual(out);
    expect(() => session.runSync({ x: { data: new Float32Array(4), shape: [1, 4] } }, { y: new Float32Array(4) })).toThrow(/TensorFlow step failed: /);
    expect(() => session.runSync({ nope: { data: new Float32Array(3), shape: [3] } })).toThrow("no operation named 'nope' to feed");
    await session.close();
    expect(() => session.runSync({}, { y: out })).toThrow('this session is closed');
    expect(() => openSession(reluGraph(), { intraOpThreads: 1, interOpThreads: 'all' as never })).toThrow(
      `options.interOpThreads must be a positive integer or 'caller', received "all"`,
    );
  });

  it('sums in input order, whatever the split', async () => {
    const n = 1000;
    const inputs = [0, 1, 2].map((i) => Float32Array.from({ length: n }, (_, k) => Math.sin(k * (i + 1)) * 1e3 ** (i % 2)));
    const whole = new Float32Array(n);
    await sumInto(whole, inputs);
    const split = new Float32Array(new SharedArrayBuffer(n * 4));
    await Promise.all([sumInto(split, inputs, 0, 333), sumInto(split, inputs, 333, 334), sumInto(split, inputs, 334, n)]);
    expect(split).toEqual(whole);
    expect(whole[7]).toBe(Math.fround(Math.fround(inputs[0]![7]! + inputs[1]![7]!) + inputs[2]![7]!));
    await expect(Promise.resolve().then(() => sumInto(whole, [new Float32Array(3)]))).rejects.toThrow('inputs must be Float32Arrays as long as out');
  });
});

describe('pooled TensorFlow memory', () => {
  it('loads TensorFlow with the BFC allocator and a limit from the machine, and per-session thread pools', () => {
    const report = tensorflowReport();
    expect(report.allocator.kind).toBe('bfc');
    expect(report.allocator.memoryLimitMB).toBeGreaterThan(100);
    expect(process.env.TF_CPU_ALLOCATOR_USE_BFC).toBe('true');
    expect(process.env.TF_OVERRIDE_GLOBAL_THREADPOOL).toBe('1');
    expect(() => loadTensorFlow({ allocator: 'jemalloc' as never })).toThrow(`options.allocator must be 'bfc' or 'system', received "jemalloc"`);
    expect(() => loadTensorFlow({ memoryLimitMB: -5 })).toThrow('options.memoryLimitMB must be a positive integer, received -5');
  });
});

describe('thread plan', () => {
  it('lays extraction out as a one-thread replica per core unless replicas or threads are given', () => {
    expect(planExtraction({ cores: 2 })).toMatchObject({ replicas: 2, threadsPerReplica: 1, trainingThreads: 2, warnings: [] });
    expect(planExtraction({ cores: 16 })).toMatchObject({ replicas: 16, threadsPerReplica: 1 });
    expect(planExtraction({ cores: 16, replicas: 2 })).toEqual(planThreads({ cores: 16, replicas: 2 }));
    expect(planExtraction({ cores: 16, threadsPerReplica: 8 })).toEqual(planThreads({ cores: 16, threadsPerReplica: 8 }));
    expect(planExtraction({ cores: 4, decodeWorkers: 3 })).toMatchObject({ replicas: 4, threadsPerReplica: 1, decodeWorkers: 3 });
  });
  it('gives each replica up to 4 threads and adds replicas past that', () => {
    expect(planThreads({ cores: 2 })).toMatchObject({ replicas: 1, threadsPerReplica: 2, decodeWorkers: 2, trainingThreads: 2, warnings: [] });
    expect(planThreads({ cores: 16 })).toMatchObject({ replicas: 4, threadsPerReplica: 4, decodeWorkers: 16 });
    expect(planThreads({ cores: 64 })).toMatchObject({ replicas: 16, threadsPerReplica: 4 });
    expect(planThreads({ cores: 6 })).toMatchObject({ replicas: 1, threadsPerReplica: 4 });
    expect(planThreads({ cores: 16, replicas: 2 })).toMatchObject({
      replicas: 2,
      threadsPerReplica: 4,
      source: { replicas: 'option', threadsPerReplica: 'plan' },
    });
    expect(planThreads({ cores: 8, replicas: 8 })).toMatchObject({ replicas: 8, threadsPerReplica: 1 });
  });

  it('warns of oversubscription and refuses unreasonable values, naming the flag', () => {
    expect(planThreads({ cores: 4, replicas: 4, threadsPerReplica: 2 }).warnings[0]).toMatch(
      /4 replicas × 2 threads = 8 TensorFlow threads on 4 cores: oversubscribed/,
    );
    expect(() => planThreads({ cores: 2, replicas: 500 })).toThrow(
      'replicas (--replicas) must be at most 2 on this machine (2 cores: a replica needs a core), received 500',
    );
    expect(() => planThreads({ cores: 2, decodeWorkers: 1000 })).toThrow(
      'decode workers (--workers) must be at most 8 on this machine (4 per core on 2 cores), received 1000',
    );
    expect(() => planThreads({ cores: 2, threadsPerReplica: 0 })).toThrow('threads per replica (--tf-threads) must be a positive integer, received 0');
  });
});
