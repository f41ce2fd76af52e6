/**
 * Data-parallel replicas of one compiled graph. Each replica is a TensorFlow session with its own
 * copy of the variables and its own intra-op thread pool; its steps run on a native thread of its
 * own, so N replicas compute at once.
 *
 * One training step over a global batch of B rows, with N replicas:
 * 1. replica r takes the contiguous rows [⌊rB/N⌋, ⌊(r+1)B/N⌋) straight from the batch's memory
 *    (a view of the flow's shared slot, no copy in JavaScript; the addon copies each feed once
 *    into a tensor TensorFlow owns) and computes the gradient of its rows' summed
 *    loss, scaled by 1/B, into its own region of one SharedArrayBuffer;
 * 2. the N regions are summed into a shared sum buffer, in N parallel ranges, always adding
 *    replica 0's value first, then 1's, … (the sum is the same however it is split);
 * 3. every replica applies that one sum with the same optimizer step, so all replicas hold
 *    identical weights after every step (the update kernels are deterministic elementwise ops).
 * The sum of per-slice mean-scaled gradients is the gradient of the global batch's mean loss: N
 * replicas train as one replica does at the same global batch, up to float summation order.
 * With one replica a step is a single native call (gradients never leave TensorFlow).
 *
 * A graph that holds its replicas (compiled.inGraphReplicas > 0: BatchNormalization trains, and its
 * statistics are summed across replicas mid-step; see compile.ts) runs in one session instead, with
 * an inter-op thread per replica and their threads in one pool: a step is one native call, each
 * replica fed its rows as above, and TensorFlow adds the gradients in the graph.
 * @internal
 */
import { type GraphSession, openSession, sumInto } from '@featherstack/tensorflow';
import type { CompiledGraph } from './compile.js';

export interface ReplicaOptions {
  replicas: number;
  /** Intra-op threads of each replica's session. */
  threadsPerReplica: number;
  /**
   * Steps run on the JavaScript thread (GraphSession.runSync), one replica only: for graphs whose
   * steps take microseconds (a dense head), where a run's own thread and promise cost more than
   * the step. Default false.
   */
  synchronous?: boolean;
}

export interface OptimizerStep {
  learningRate: number;
  /** The 1-based count of this update (Adam's bias correction). */
  iteration: number;
}

export interface StepResult {
  /** Sum over the batch's rows of the per-row loss. */
  lossSum: number;
  /** Rows predicted correctly. */
  correct: number;
}

/** Float offsets padded to 16 floats (64 bytes), so each replica's region starts on a cache line. */
const ALIGN = 16;

export class GraphReplicas {
  readonly compiled: CompiledGraph;
  readonly sessions: GraphSession[];
  private readonly pixels: number;
  private readonly gradOffsets: number[];
  private readonly gradLength: number;
  private grads: Float32Array[] | null = null;
  private sum: Float32Array | null = null;
  private readonly synchronous: boolean;
  /** Replicas held in the one session's graph (0: a session per replica). */
  private readonly inGraph: number;
  /** @internal Use GraphReplicas.open(). */
  constructor(compiled: CompiledGraph, options: ReplicaOptions) {
    this.compiled = compiled;
    this.synchronous = options.synchronous ?? false;
    if (this.synchronous && options.replicas !== 1) throw new Error(`synchronous steps need one replica, not ${options.replicas}`);
    this.inGraph = compiled.inGraphReplicas;
    if (this.inGraph > 0 && this.inGraph !== options.replicas)
      throw new Error(`the graph was compiled for ${this.inGraph} replicas, not ${options.replicas} (compile it with options.replicas)`);
    this.pixels = compiled.inputShape.reduce((a, b) => a * b, 1);
    // Inter-op threads: 1. A replica's ops are a chain (each layer waits for the one before), and
    // the cores are spread over replicas instead; intra-op threads parallelise each op. Synchronous
    // replicas run every op on the calling thread.
    this.sessions =
      this.inGraph > 0
        ? [
            openSession(compiled.graphDef, {
              intraOpThreads: options.replicas * options.threadsPerReplica,
              interOpThreads: this.synchronous ? 'caller' : options.replicas,
            }),
          ]
        : Array.from({ length: options.replicas }, () =>
            openSession(compiled.graphDef, { intraOpThreads: options.threadsPerReplica, interOpThreads: this.synchronous ? 'caller' : 1 }),
          );
    let offset = 0;
    this.gradOffsets = compiled.trainable.map((v) => {
      const at = offset;
      offset += Math.ceil(compiled.variables[v]!.size / ALIGN) * ALIGN;
      return at;
    });
    this.gradLength = offset;
  }

  static open(compiled: CompiledGraph, options: ReplicaOptions): GraphReplicas {
    return new GraphReplicas(compiled, options);
  }

  get replicas(): number {
    return this.inGraph || this.sessions.length;
  }

  /** Sets every replica's weights (in model.getWeights() order). */
  async setWeights(weights: Float32Array[]): Promise<void> {
    const feeds = Object.fromEntries(this.compiled.variables.map((v) => [`init/${v.index}`, { data: weights[v.index]!, shape: v.shape }]));
    await Promise.all(this.sessions.map((s) => s.run(feeds, {}, ['init'])));
  }

  /** The weights (identical on every replica; read from the first). */
  async getWeights(): Promise<Float32Array[]> {
    const out = this.compiled.variables.map((v) => new Float32Array(v.size));
    await this.sessions[0]!.run({}, Object.fromEntries(this.compiled.variables.map((v) => [`read/${v.index}`, out[v.index]!])));
    return out;
  }

  /** Optimizer slots, `slotsPerVariable` per trainable variable in order; zeros when `slots` is omitted. */
  async setSlots(slots?: Float32Array[]): Promise<void> {
    const feeds = Object.fromEntries(
      this.slotShapes().map((shape, k) => [`slot_init/${k}`, { data: slots?.[k] ?? new Float32Array(shape.reduce((a, b) => a * b, 1)), shape }]),
    );
    await Promise.all(this.sessions.map((s) => s.run(feeds, {}, ['slot_init'])));
  }

  async getSlots(): Promise<Float32Array[]> {
    const out = this.slotShapes().map((shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)));
    await this.sessions[0]!.run({}, Object.fromEntries(out.map((o, k) => [`slot_read/${k}`, o])));
    return out;
  }

  slotShapes(): number[][] {
    return this.compiled.trainable.flatMap((v) => Array.from({ length: this.compiled.slotsPerVariable }, () => this.compiled.variables[v]!.shape));
  }

  /** One run of `session`, on this thread when the replicas are synchronous. */
  private async run(session: GraphSession, feeds: Parameters<GraphSession['run']>[0], fetches: Parameters<GraphSession['run']>[1], targets?: string[]) {
    if (this.synchronous) session.runSync(feeds, fetches, targets);
    else await session.run(feeds, fetches, targets);
  }

  /** Contiguous row ranges of a batch of `rows`, one per replica (empty ones dropped unless `keepEmpty`). */
  private slices(rows: number, n = this.sessions.length, keepEmpty = false): { replica: number; begin: number; end: number }[] {
    return Array.from({ length: n }, (_, r) => ({ replica: r, begin: Math.floor((r * rows) / n), end: Math.floor(((r + 1) * rows) / n) })).filter(
      (s) => keepEmpty || s.end > s.begin,
    );
  }

  /** Unit sample weights, fed where no class weights are given (and to validation). */
  private ones: Float32Array | null = null;

  private inputs(x: Float32Array, y: Float32Array, begin: number, end: number, weights?: Float32Array) {
    const rows = x.length / this.pixels;
    const labels = y.length / rows;
    if (!weights && (this.ones?.length ?? 0) < rows) this.ones = new Float32Array(rows).fill(1);
    return {
      x: { data: x.subarray(begin * this.pixels, end * this.pixels), shape: [end - begin, ...this.compiled.inputShape] },
      y: { data: y.subarray(begin * labels, end * labels), shape: [end - begin, labels] },
      sample_weight: { data: (weights ?? this.ones!).subarray(begin, end), shape: [end - begin] },
    };
  }

  /**
   * One optimizer step on a batch of `rows` rows: `x` holds rows × inputShape pixels, `y` the labels
   * (one-hot rows, or one class index / binary label per row), `weights` each row's loss weight
   * (class_weight; default 1).
   */
  async trainStep(x: Float32Array, y: Float32Array, rows: number, step: OptimizerStep, weights?: Float32Array): Promise<StepResult> {
    const hyper = {
      lr: scalar(step.learningRate),
      beta1_power: scalar(0.9 ** step.iteration),
      beta2_power: scalar(0.999 ** step.iteration),
    };
    const scale = scalar(1 / rows);
    if (this.inGraph > 0) {
      // Every replica's feeds, one run, one update. A replica without rows gets row 0 as a stand-in,
      // of loss weight 0 and `present` 0, which zeroes what it adds (see replica-sums.ts).
      const feeds = Object.fromEntries(
        this.slices(rows, this.inGraph, true).flatMap(({ replica, begin, end }) => {
          const own =
            end > begin
              ? this.inputs(x, y, begin, end, weights)
              : { ...this.inputs(x, y, 0, 1, weights), sample_weight: { data: new Float32Array(1), shape: [1] } };
          return Object.entries({ ...own, ...(end > begin ? {} : { present: scalar(0) }) }).map(([name, feed]) => [`r${replica}/${name}`, feed]);
        }),
      );
      const [loss, correct] = [new Float32Array(1), new Float32Array(1)];
      await this.run(this.sessions[0]!, { ...feeds, scale, ...hyper }, { 'train/loss_sum': loss, 'train/correct': correct }, ['apply']);
      return { lossSum: loss[0]!, correct: correct[0]! };
    }
    const slices = this.slices(rows);
    const stats = slices.map(() => [new Float32Array(1), new Float32Array(1)] as const);
    if (this.sessions.length === 1) {
      const [loss, correct] = stats[0]!;
      await this.run(this.sessions[0]!, { ...this.inputs(x, y, 0, rows, weights), scale, ...hyper }, { loss_sum: loss, correct }, ['apply']);
      return { lossSum: loss[0]!, correct: correct[0]! };
    }
    this.grads ??= this.sessions.map(() => new Float32Array(new SharedArrayBuffer(this.gradLength * 4)));
    this.sum ??= new Float32Array(new SharedArrayBuffer(this.gradLength * 4));
    const grads = this.grads;
    const sum = this.sum;
    await Promise.all(
      slices.map(({ replica, begin, end }, i) => {
        const [loss, correct] = stats[i]!;
        const fetches = Object.fromEntries(this.gradViews(grads[replica]!).map((view, k) => [`grad/${k}`, view]));
        return this.sessions[replica]!.run({ ...this.inputs(x, y, begin, end, weights), scale }, { loss_sum: loss, correct, ...fetches });
      }),
    );
    const parts = slices.map((s) => grads[s.replica]!);
    const n = this.sessions.length;
    await Promise.all(
      Array.from({ length: n }, (_, r) => sumInto(sum, parts, Math.floor((r * this.gradLength) / n), Math.floor(((r + 1) * this.gradLength) / n))),
    );
    const fed = Object.fromEntries(
      this.gradViews(sum).map((view, k) => [`grad_in/${k}`, { data: view, shape: this.compiled.variables[this.compiled.trainable[k]!]!.shape }]),
    );
    await Promise.all(this.sessions.map((s) => s.run({ ...fed, ...hyper }, {}, ['apply_fed'])));
    return { lossSum: stats.reduce((a, [l]) => a + l[0]!, 0), correct: stats.reduce((a, [, c]) => a + c[0]!, 0) };
  }

  private gradViews(buffer: Float32Array): Float32Array[] {
    return this.compiled.trainable.map((v, k) => buffer.subarray(this.gradOffsets[k]!, this.gradOffsets[k]! + this.compiled.variables[v]!.size));
  }

  /** Summed loss and correct rows of a batch, without training (validation: dropout off, as Keras scores it). */
  async evaluate(x: Float32Array, y: Float32Array, rows: number): Promise<StepResult> {
    const slices = this.slices(rows);
    const stats = slices.map(() => [new Float32Array(1), new Float32Array(1)] as const);
    await Promise.all(
      slices.map(({ replica, begin, end }, i) =>
        this.run(this.sessions[replica]!, { ...this.inputs(x, y, begin, end), training: scalar(0) }, { loss_sum: stats[i]![0], correct: stats[i]![1] }),
      ),
    );
    return { lossSum: stats.reduce((a, [l]) => a + l[0]!, 0), correct: stats.reduce((a, [, c]) => a + c[0]!, 0) };
  }

  /**
   * The `output` of `rows` rows of `x` into `out` (rows × outputSize, row order kept: replica r
   * writes the rows it read).
   */
  async predict(x: Float32Array, rows: number, out: Float32Array): Promise<void> {
    const size = this.compiled.outputSize;
    await Promise.all(
      this.slices(rows).map(({ replica, begin, end }) =>
        this.run(
          this.sessions[replica]!,
          {
            x: { data: x.subarray(begin * this.pixels, end * this.pixels), shape: [end - begin, ...this.compiled.inputShape] },
            // A graph with in-graph replicas trains: its predictions are validation's, dropout off.
            ...(this.inGraph > 0 ? { training: scalar(0) } : {}),
          },
          { output: out.subarray(begin * size, end * size) },
        ),
      ),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.close()));
    this.grads = null;
    this.sum = null;
  }
}

function scalar(value: number) {
  return { data: Float32Array.of(value), shape: [] as number[] };
}
