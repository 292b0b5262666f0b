/**
 * A small in-memory graph representation that the model builders emit and `onnx-writer.ts` serialises.
 * Builders call `op()` and get back the names of the outputs, so graph functions *return* their results
 * instead of passing names through shared dictionaries.
 */

/** Element types used in realign graphs. */
export type ElemType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | 'float64' | 'uint8';

/** A dimension: a fixed size or a symbolic name (e.g. 'batch'). */
export type Dim = number | string;

/** A graph input or output. */
export interface ValueInfo {
  name: string;
  type: ElemType;
  dims: Dim[];
  /** What it is, for the I/O table. */
  doc?: string;
}

/** A weight or constant. `data` is produced lazily for external weights so that only one is held at a time. */
export interface Initializer {
  name: string;
  type: ElemType;
  dims: number[];
  data: Uint8Array | (() => Uint8Array);
  /** stored in the external data file rather than inside the protobuf */
  external: boolean;
}

/** Attribute values, tagged so that ints and floats are never confused. */
export type Attr =
  { i: number } | { f: number } | { s: string } | { ints: number[] } | { floats: number[] } | { g: Graph } | { t: Initializer };

/** One operator application. */
export interface GraphNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attr>;
}

/** Options of one `op()` call. */
export interface OpOptions {
  /** the node name, read like a path: /model/layers.3/attn/qkv_proj/MatMul */
  name: string;
  domain?: string;
  /** number of outputs (named `${name}/output_k`), or explicit names ('' for an unused optional output) */
  outputs?: number | string[];
}

export const MS_DOMAIN = 'com.microsoft';

const TYPE_BYTES: Record<ElemType, number> = { float32: 4, float16: 2, int64: 8, int32: 4, bool: 1, float64: 8, uint8: 1 };

/** Size in bytes of a tensor of this type and shape. */
export function tensorBytes(type: ElemType, dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1) * TYPE_BYTES[type];
}

/** A graph under construction (also used for subgraphs of If/Loop). */
export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers: Initializer[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();

  constructor(readonly name: string) {}

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElemType, dims: Dim[], doc?: string): string {
    this.claim(name);
    this.inputs.push({ name, type, dims, doc });
    return name;
  }

  /** Declares `value` as a graph output under `name` (adds an Identity when the names differ). */
  output(value: string, name: string, type: ElemType, dims: Dim[], doc?: string): void {
    if (value !== name) this.op('Identity', [value], {}, { name: `/output/${name}`, outputs: [name] });
    this.outputs.push({ name, type, dims, doc });
  }

  /** Adds a weight; large ones go to external data. */
  initializer(name: string, type: ElemType, dims: number[], data: Uint8Array | (() => Uint8Array), external = true): string {
    this.claim(name);
    this.initializers.push({ name, type, dims, data, external });
    return name;
  }

  /** A small constant, made once per distinct value and reused. */
  constant(
    type: 'int64' | 'int32' | 'float32' | 'float16' | 'float64',
    values: number[] | Uint16Array,
    dims: number[] = [values.length],
  ): string {
    const key = `${type}:${dims.join('x')}:${Array.from(values).join(',')}`;
    const found = this.constants.get(key);
    if (found) return found;
    const name = `/const/${type}/${dims.join('x') || 'scalar'}/${this.constants.size}`;
    let bytes: Uint8Array;
    if (type === 'int64') bytes = new Uint8Array(BigInt64Array.from(Array.from(values), (v) => BigInt(v)).buffer);
    else if (type === 'int32') bytes = new Uint8Array(Int32Array.from(values).buffer);
    else if (type === 'float32') bytes = new Uint8Array(Float32Array.from(values).buffer);
    else if (type === 'float64') bytes = new Uint8Array(Float64Array.from(values).buffer);
    else bytes = new Uint8Array(Uint16Array.from(values).buffer);
    this.initializer(name, type, dims, bytes, false);
    this.constants.set(key, name);
    return name;
  }

  /** Scalar int64 constant (shape []). */
  scalarI64(v: number): string {
    return this.constant('int64', [v], []);
  }

  /** Adds a node and returns its output names. */
  op(opType: string, inputs: string[], attributes: Record<string, Attr>, opts: OpOptions): string[] {
    const outputs =
      typeof opts.outputs === 'object'
        ? opts.outputs
        : Array.from({ length: opts.outputs ?? 1 }, (_, k) => `${opts.name}/output_${k}`);
    for (const o of outputs) if (o) this.claim(o);
    this.nodes.push({ name: opts.name, opType, domain: opts.domain ?? '', inputs, outputs, attributes });
    return outputs;
  }

  /** Adds a node with one output and returns that output's name. */
  op1(opType: string, inputs: string[], attributes: Record<string, Attr>, name: string, domain?: string): string {
    return this.op(opType, inputs, attributes, { name, domain })[0];
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is defined twice`);
    this.names.add(name);
  }
}
