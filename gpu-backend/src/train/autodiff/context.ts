/**
 * What a gradient rule needs while it emits backward ops: unique node names under `/grad`, float constants of the
 * graph's type, static shapes, and the helpers every rule shares (reduce a broadcast gradient back to its input's
 * shape, zeros of a value's shape, swap the last two axes).
 */
import type { Attr, Graph } from '../../graph/ir.ts';
import { constantInts, sameShape, type SShape } from './shapes.ts';

/** Float types a training graph can have: float32 to train, float64 for gradient checks. */
export type TrainFloat = 'float32' | 'float64';

/** ONNX TensorProto data type codes of the training float types. */
export const FLOAT_CODE: Record<TrainFloat, number> = { float32: 1, float64: 11 };

/** Emission state of one backward pass. */
export class GradContext {
  private readonly used = new Set<string>();
  private readonly shapeOps = new Map<string, string>();

  constructor(
    readonly g: Graph,
    readonly ft: TrainFloat,
    readonly shapes: Map<string, SShape>,
  ) {}

  /** Adds a backward node named `/grad<path>` (a counter keeps names unique) and returns its output. */
  op1(type: string, inputs: string[], attrs: Record<string, Attr>, path: string, shape?: SShape): string {
    const out = this.g.op1(type, inputs, attrs, this.unique(`/grad${path}`));
    if (shape !== undefined) this.shapes.set(out, shape);
    return out;
  }

  /** A node with several outputs. */
  op(type: string, inputs: string[], attrs: Record<string, Attr>, path: string, outputs: number): string[] {
    return this.g.op(type, inputs, attrs, { name: this.unique(`/grad${path}`), outputs });
  }

  /** The static shape of a value (null when unknown). */
  shape(v: string): SShape {
    return this.shapes.get(v) ?? null;
  }

  /** The rank of a value; rules that need it throw a clear error when it is unknown. */
  rank(v: string, why: string): number {
    const s = this.shape(v);
    if (!s) throw new Error(`autodiff: the rank of "${v}" is unknown, but ${why} needs it; give the graph input static ranks`);
    return s.length;
  }

  /** Values of an int constant input (axes, shapes, split sizes); throws when it is not a constant. */
  ints(v: string, why: string): number[] {
    const c = constantInts(this.g, v);
    if (!c) throw new Error(`autodiff: ${why} needs "${v}" to be a constant initializer`);
    return c;
  }

  /** A float scalar constant of the graph's type. */
  scalar(x: number): string {
    return this.g.constant(this.ft, [x], []);
  }

  /** Shape(v), made once per value. */
  shapeOf(v: string): string {
    let s = this.shapeOps.get(v);
    if (!s) {
      s = this.op1('Shape', [v], {}, `/shape/${v}`);
      this.shapeOps.set(v, s);
    }
    return s;
  }

  /** Zeros with the shape of `v`. */
  zerosLike(v: string, path: string): string {
    const zero: Attr = {
      t: { name: 'value', type: this.ft, dims: [1], data: new Uint8Array(this.ft === 'float32' ? 4 : 8), external: false },
    };
    return this.op1('ConstantOfShape', [this.shapeOf(v)], { value: zero }, `${path}/zeros`, this.shape(v));
  }

  /** Swaps the last two axes of `v` (rank must be known). */
  swapLast(v: string, path: string): string {
    const r = this.rank(v, 'MatMul');
    const perm = Array.from({ length: r }, (_, i) => i);
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const s = this.shape(v);
    return this.op1('Transpose', [v], { perm: { ints: perm } }, `${path}/T`, s ? perm.map((p) => s[p]) : null);
  }

  /**
   * Sums a gradient `d` of broadcast shape `dShape` back to the shape of the input `x` it was broadcast from.
   * Static shapes give the axes directly; otherwise they are found at run time.
   */
  unbroadcast(d: string, dShape: SShape, x: string, path: string): string {
    const sx = this.shape(x);
    if (sameShape(sx, dShape)) return d;
    const axes = sx && dShape ? staticReduceAxes(sx, dShape) : null;
    if (axes) {
      if (axes.all.length === 0) return d;
      const kept = dShape!.map((dim, i) => (axes.all.includes(i) ? 1 : dim));
      let r = this.op1(
        'ReduceSum',
        [d, this.g.constant('int64', axes.all)],
        { keepdims: { i: 1 } },
        `${path}/unbroadcast/ReduceSum`,
        kept,
      );
      if (axes.lead > 0) {
        const lead = Array.from({ length: axes.lead }, (_, i) => i);
        r = this.op1('Squeeze', [r, this.g.constant('int64', lead)], {}, `${path}/unbroadcast/Squeeze`, sx);
      }
      return r;
    }
    // run-time axes: pad x's shape with leading ones to d's rank, reduce where the padded shape differs
    const sxv = this.shapeOf(x);
    const sdv = this.shapeOf(d);
    const diff = this.op1(
      'Sub',
      [this.op1('Shape', [sdv], {}, `${path}/rank_d`), this.op1('Shape', [sxv], {}, `${path}/rank_x`)],
      {},
      `${path}/rank_diff`,
    );
    const one: Attr = {
      t: { name: 'value', type: 'int64', dims: [1], data: new Uint8Array(BigInt64Array.of(1n).buffer), external: false },
    };
    const ones = this.op1('ConstantOfShape', [diff], { value: one }, `${path}/lead_ones`);
    const padded = this.op1('Concat', [ones, sxv], { axis: { i: 0 } }, `${path}/padded_shape`);
    const differs = this.op1('Not', [this.op1('Equal', [padded, sdv], {}, `${path}/same_dim`)], {}, `${path}/differs`);
    const axesV = this.op1(
      'Reshape',
      [this.op1('NonZero', [differs], {}, `${path}/axes`), this.g.constant('int64', [-1])],
      {},
      `${path}/axes_flat`,
    );
    const summed = this.op1(
      'ReduceSum',
      [d, axesV],
      { keepdims: { i: 1 }, noop_with_empty_axes: { i: 1 } },
      `${path}/unbroadcast/ReduceSum`,
    );
    return this.op1('Reshape', [summed, sxv], {}, `${path}/unbroadcast/Reshape`, sx);
  }

  private unique(name: string): string {
    let n = name;
    for (let k = 1; this.used.has(n); k++) n = `${name}_${k}`;
    this.used.add(n);
    return n;
  }
}

/** Axes to sum for a static broadcast (in d's coordinates), or null when the shapes leave it ambiguous. */
function staticReduceAxes(sx: NonNullable<SShape>, sd: NonNullable<SShape>): { all: number[]; lead: number } | null {
  const lead = sd.length - sx.length;
  if (lead < 0) return null;
  const all = Array.from({ length: lead }, (_, i) => i);
  for (let i = 0; i < sx.length; i++) {
    const a = sx[i];
    const b = sd[lead + i];
    if (a === 1) {
      if (b !== 1) all.push(lead + i); // summing a size-1 axis is harmless if b turns out to be 1
    } else if (a === null || a !== b) {
      return null;
    }
  }
  return { all, lead };
}
