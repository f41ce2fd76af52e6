/**
 * A TensorFlow session over a graph built with GraphBuilder, run through featherstack's native
 * addon (native/session.cc) in the libtensorflow tfjs-node loads. Each session owns its variables
 * and its own thread pools, so several sessions (trainer replicas) run side by side.
 */
import { NativeTensorFlowError, TensorFlowOptionError } from '../errors.js';
import { loadTensorFlow } from '../load.js';
import { type Addon, type Buffer, requireAddon } from './addon.js';
import { sessionConfig } from './proto.js';

/** The native addon, with TensorFlow loaded (whose settings it shares). @internal */
export function nativeAddon(): Addon {
  loadTensorFlow();
  return requireAddon();
}

export interface SessionOptions {
  /** Threads one op may use in this session. */
  intraOpThreads: number;
  /**
   * Ops of this session that may run at once, or 'caller': every op on the thread that runs the
   * step (TensorFlow's negative inter_op_parallelism_threads), no hand-off to a pool per op —
   * for small graphs run with runSync (measured on a dense head's step: 130 µs against 187 µs
   * with one inter-op thread).
   */
  interOpThreads: number | 'caller';
}

export interface Feed {
  data: Buffer;
  shape: number[];
}

/**
 * A running graph. `run` feeds placeholders, copies fetched outputs into the given arrays and runs
 * the targets; one run at a time per session.
 *
 * @example
 * const s = openSession(g.toGraphDef(), { intraOpThreads: 1, interOpThreads: 1 });
 * const out = new Float32Array(4);
 * await s.run({ x: { data: input, shape: [1, 4] } }, { y: out });
 */
export class GraphSession {
  private handle: object | null;
  private busy: Promise<unknown> = Promise.resolve();
  /** Asynchronous runs queued or running. */
  private pending = 0;

  /** @internal Use openSession(). */
  constructor(graphDef: Uint8Array, options: SessionOptions) {
    for (const key of ['intraOpThreads', 'interOpThreads'] as const) {
      const v = options[key];
      if (key === 'interOpThreads' && v === 'caller') continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
        const expected = key === 'interOpThreads' ? "a positive integer or 'caller'" : 'a positive integer';
        throw new TensorFlowOptionError(`options.${key} must be ${expected}, received ${JSON.stringify(v)}`);
      }
    }
    this.handle = nativeAddon().newSession(graphDef, sessionConfig(options));
  }

  /** Runs one step. Rejects with TensorFlow's message (and this call's stack) when the step fails. */
  async run(feeds: Record<string, Feed>, fetches: Record<string, Buffer> = {}, targets: string[] = []): Promise<void> {
    if (!this.handle) throw new NativeTensorFlowError('this session is closed');
    const caller = new Error();
    const previous = this.busy;
    let release!: () => void;
    this.busy = new Promise<void>((r) => {
      release = r;
    });
    this.pending++;
    try {
      await previous;
      if (!this.handle) throw new NativeTensorFlowError('this session is closed');
      const result = await nativeAddon().run(
        this.handle,
        Object.entries(feeds).map(([name, f]) => [name, f.data, f.shape]),
        Object.entries(fetches),
        targets,
      );
      if (result instanceof Error) {
        const error = new NativeTensorFlowError(`TensorFlow step failed: ${result.message.split('\n')[0]}`);
        error.stack = `${error.name}: ${error.message}\n${caller.stack?.split('\n').slice(1).join('\n') ?? ''}`;
        throw error;
      }
    } finally {
      this.pending--;
      release();
    }
  }

  /**
   * Runs one step on this (the JavaScript) thread, blocking it until the step ends: for graphs
   * whose steps take microseconds (a dense head's), where `run`'s thread and promise cost more
   * than the step (measured: 195 µs a run against ~60 µs for a 64 → 128 → 10 forward pass).
   * Throws while an asynchronous run of this session is queued or in flight.
   */
  runSync(feeds: Record<string, Feed>, fetches: Record<string, Buffer> = {}, targets: string[] = []): void {
    if (!this.handle) throw new NativeTensorFlowError('this session is closed');
    if (this.pending > 0) throw new NativeTensorFlowError(`runSync(): ${this.pending} asynchronous run(s) of this session are not finished`);
    const result = nativeAddon().runSync(
      this.handle,
      Object.entries(feeds).map(([name, f]) => [name, f.data, f.shape]),
      Object.entries(fetches),
      targets,
    );
    if (result instanceof Error) throw new NativeTensorFlowError(`TensorFlow step failed: ${result.message.split('\n')[0]}`);
  }

  /** Frees the session's graph, variables and threads (after any running step). */
  async close(): Promise<void> {
    await this.busy;
    if (this.handle) nativeAddon().closeSession(this.handle);
    this.handle = null;
  }
}

/** Opens a session on a serialised GraphDef (GraphBuilder.toGraphDef()). */
export function openSession(graphDef: Uint8Array, options: SessionOptions): GraphSession {
  return new GraphSession(graphDef, options);
}

/**
 * out[k] = Σ inputs[i][k] for k in [begin, end), on a native thread, summing in input order (so the
 * result does not depend on how a range is split between callers).
 */
export function sumInto(out: Float32Array, inputs: Float32Array[], begin = 0, end = out.length): Promise<void> {
  return nativeAddon().sumInto(out, inputs, begin, end);
}
