/**
 * The cross-replica sums of a graph that holds its replicas in-graph: each replica gives its
 * tensor under a key ('conv/bn/sum'), every replica reads the one `sync/<key>` node, and that node
 * is defined once all replicas are built (a GraphDef may list a node after its readers). The sum
 * adds replica 0's tensor first, then 1's, …: the same for every run of a given replica count.
 *
 * A replica may have no rows in a step (a last batch smaller than the replica count). TensorFlow's
 * oneDNN convolution mis-shapes an empty batch, so such a replica is fed one stand-in row with
 * `r<r>/present` = 0 instead, which zeroes everything it contributes: its parts of every sum here,
 * and (compile.ts) its gradients and correct count; its loss weight is 0.
 * @internal
 */
import { F32, type GraphBuilder } from '@featherstack/tensorflow';
import type { BatchStatistics } from './context.js';
import { GraphCompileError } from './layers.js';

export class ReplicaSums {
  private readonly parts = new Map<string, string[]>();
  /** Ops a step runs once (moving averages), for the `apply` target. */
  readonly updates: string[] = [];
  /** Each replica's `present` flag (1 unless fed 0: a stand-in row, see the module comment). */
  readonly present: string[] = [];

  constructor(
    private readonly g: GraphBuilder,
    private readonly replicas: number,
    private readonly scale: string,
  ) {}

  /** What replica `r`'s layers sum through; built inside its scope, in order 0, 1, … */
  replica(r: number): BatchStatistics {
    const { g } = this;
    const present = g.op('PlaceholderWithDefault', [g.constFloat('present/default', [1], [])], { dtype: { type: 'float' }, shape: { shape: [] } }, 'present');
    this.present.push(present);
    return {
      replica: r,
      scale: this.scale,
      sum: (key, local) => {
        const list = this.parts.get(key) ?? [];
        if (list.length !== r) throw new GraphCompileError(`replica ${r} sums '${key}' out of order (it has ${list.length} of ${this.replicas} parts)`);
        list.push(g.op('Mul', [local, present], F32, `${key}/present`));
        this.parts.set(key, list);
        return `sync/${key}`;
      },
      update: (op) => void this.updates.push(op),
    };
  }

  /** Defines every `sync/<key>` node, once every replica has given its part. */
  define(): void {
    for (const [key, locals] of this.parts) {
      if (locals.length !== this.replicas) throw new GraphCompileError(`'${key}' has ${locals.length} of ${this.replicas} replicas' parts`);
      this.g.define(`sync/${key}`, 'AddN', locals, { T: { type: 'float' }, N: { i: locals.length } });
    }
  }
}
