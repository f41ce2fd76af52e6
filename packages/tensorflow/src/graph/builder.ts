/**
 * Describes a TensorFlow graph as plain data (NodeDefs), then serialises it as a GraphDef for a
 * native session. Every method adds one node and returns the name of its output ("name" for output
 * 0, "name:k" for output k), which later nodes take as inputs.
 *
 * @example
 * const g = new GraphBuilder();
 * const x = g.placeholder('x', 'float', [null, 4]);
 * const y = g.op('Relu', [x], { T: { type: 'float' } }, 'y');
 * const session = await openSession(g.toGraphDef());
 */
import { type Attr, type DType, graphDef, type NodeDef } from './proto.js';

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  private readonly names = new Set<string>();
  private prefix = '';

  private unique(given: string): string {
    const base = this.prefix + given;
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Adds a node; `controls` run before it (control inputs, written "^name"). */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, name = op, controls: string[] = []): string {
    const unique = this.unique(name);
    this.nodes.push({ name: unique, op, inputs: [...inputs, ...controls.map((c) => `^${c.split(':')[0]}`)], attrs });
    return unique;
  }

  /** A placeholder; `null` dimensions are unknown (a batch of any size). */
  placeholder(name: string, dtype: DType, shape: (number | null)[]): string {
    return this.op('Placeholder', [], { dtype: { type: dtype }, shape: { shape: shape.map((d) => d ?? -1) } }, name);
  }

  constFloat(name: string, values: number[] | Float32Array, shape: number[] = [values.length]): string {
    return this.op('Const', [], { dtype: { type: 'float' }, value: { tensor: { dtype: 'float', shape, values: Float32Array.from(values) } } }, name);
  }

  constInt(name: string, values: number[], shape: number[] = [values.length]): string {
    return this.op('Const', [], { dtype: { type: 'int32' }, value: { tensor: { dtype: 'int32', shape, values: Int32Array.from(values) } } }, name);
  }

  /**
   * Builds `build` with every node it adds named under `prefix` ('r1/': 'r1/x', 'r1/conv/mul', …),
   * so that one graph can hold copies of a subgraph whose fixed names (feeds, fetches) stay
   * distinct. Inputs are not renamed: a copy still reads shared nodes by their own names.
   */
  scoped<T>(prefix: string, build: () => T): T {
    const outer = this.prefix;
    this.prefix = outer + prefix;
    try {
      return build();
    } finally {
      this.prefix = outer;
    }
  }

  /**
   * Adds a node under exactly `name` (no prefix, no suffix), which nodes added earlier may already
   * read: a GraphDef need not list a node before its readers. Refuses a name already taken.
   */
  define(name: string, op: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    if (this.names.has(name)) throw new Error(`graph node '${name}' is defined twice`);
    this.names.add(name);
    this.nodes.push({ name, op, inputs, attrs });
    return name;
  }

  /** A NoOp that runs after every name in `after`: the target that groups them. */
  group(name: string, after: string[]): string {
    return this.op('NoOp', [], {}, name, after);
  }

  toGraphDef(): Uint8Array {
    return graphDef(this.nodes);
  }
}

/** The float32 `T` attribute most math ops take. */
export const F32: Record<string, Attr> = { T: { type: 'float' } };
