/**
 * The few protocol-buffer messages a TensorFlow graph needs (GraphDef, NodeDef, AttrValue,
 * TensorProto, ConfigProto), encoded by hand: field numbers from tensorflow/core/framework/*.proto
 * and tensorflow/core/protobuf/config.proto. Encoding only; TensorFlow parses them.
 * @internal
 */

/** TensorFlow's DataType enum values. */
export const DT = { float: 1, int32: 3, uint8: 4, int64: 9, bool: 10, bfloat16: 14, resource: 20 } as const;
export type DType = keyof typeof DT;

/** An attribute value of a NodeDef (AttrValue's oneof). */
export type Attr =
  | { type: DType }
  | { i: number }
  | { f: number }
  | { b: boolean }
  | { s: string }
  | { shape: number[] | null }
  | { ints: number[] }
  | { types: DType[] }
  | { tensor: { dtype: DType; shape: number[]; values: Float32Array | Int32Array } };

export interface NodeDef {
  name: string;
  op: string;
  inputs: string[];
  attrs: Record<string, Attr>;
}

/** Append-only byte writer for protobuf wire format. */
class Writer {
  private chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  /** A varint field (int32, int64, enum, bool). */
  int(field: number, value: number | boolean): this {
    return this.tag(field, 0).varint(typeof value === 'boolean' ? Number(value) : value);
  }

  /** A length-delimited field: bytes, string or an embedded message. */
  bytes(field: number, value: Uint8Array | string): this {
    const data = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    this.tag(field, 2).varint(data.length);
    this.push(data);
    return this;
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.tag(field, 5);
    this.push(b);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function shapeProto(shape: number[] | null): Uint8Array {
  const w = new Writer();
  if (shape === null) return w.int(3, true).finish();
  for (const size of shape) w.bytes(2, new Writer().int(1, size).finish());
  return w.finish();
}

function tensorProto(t: { dtype: DType; shape: number[]; values: Float32Array | Int32Array }): Uint8Array {
  const content = new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength);
  return new Writer().int(1, DT[t.dtype]).bytes(2, shapeProto(t.shape)).bytes(4, content).finish();
}

function attrProto(a: Attr): Uint8Array {
  const w = new Writer();
  if ('type' in a) w.int(6, DT[a.type]);
  else if ('i' in a) w.int(3, a.i);
  else if ('f' in a) w.float(4, a.f);
  else if ('b' in a) w.int(5, a.b);
  else if ('s' in a) w.bytes(2, a.s);
  else if ('shape' in a) w.bytes(7, shapeProto(a.shape));
  else if ('tensor' in a) w.bytes(8, tensorProto(a.tensor));
  else {
    // AttrValue.list (field 1): ListValue { repeated int64 i = 3; repeated DataType type = 6 } (packed)
    const list = new Writer();
    const values = 'ints' in a ? a.ints : a.types.map((t) => DT[t]);
    const packed = new Writer();
    for (const v of values) packed.varint(v);
    if (values.length) list.bytes('ints' in a ? 3 : 6, packed.finish());
    w.bytes(1, list.finish());
  }
  return w.finish();
}

function nodeProto(n: NodeDef): Uint8Array {
  const w = new Writer().bytes(1, n.name).bytes(2, n.op);
  for (const input of n.inputs) w.bytes(3, input);
  for (const [key, value] of Object.entries(n.attrs)) w.bytes(5, new Writer().bytes(1, key).bytes(2, attrProto(value)).finish());
  return w.finish();
}

/** GraphDef { repeated NodeDef node = 1; VersionDef versions = 4 }. */
export function graphDef(nodes: NodeDef[], producer = 1500): Uint8Array {
  const w = new Writer();
  for (const n of nodes) w.bytes(1, nodeProto(n));
  w.bytes(4, new Writer().int(1, producer).finish());
  return w.finish();
}

/**
 * ConfigProto with the thread pools one session uses: intra_op_parallelism_threads (2),
 * inter_op_parallelism_threads (5; -1 for 'caller') and use_per_session_threads (9), so that
 * sessions running side by side do not share (and fight over) one inter-op pool.
 */
export function sessionConfig(options: { intraOpThreads: number; interOpThreads: number | 'caller' }): Uint8Array {
  // A negative inter-op count: TensorFlow runs every op in the caller's thread.
  const inter = options.interOpThreads === 'caller' ? -1 : options.interOpThreads;
  return new Writer().int(2, options.intraOpThreads).int(5, inter).int(9, true).finish();
}
