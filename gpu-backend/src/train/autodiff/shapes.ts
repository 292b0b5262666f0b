/**
 * Static shapes of a graph's values, as far as they can be known before running it: each dimension is a number, a
 * symbolic name shared by every value with that extent (e.g. 'B'), or null (unknown). The gradient rules use them
 * to skip work (no reduction where no broadcast happened) and to pick static axes; where a shape is unknown they
 * fall back to ops that read the shape at run time, so an unknown shape costs speed, never correctness.
 */
import type { Graph, GraphNode } from '../../graph/ir.ts';

/** One dimension: fixed, symbolic, or unknown. */
export type SDim = number | string | null;

/** A shape, or null when even the rank is unknown. */
export type SShape = SDim[] | null;

/** The int64/int32 values of a constant initializer, or null when `name` is not one. */
export function constantInts(g: Graph, name: string): number[] | null {
  const init = g.initializers.find((i) => i.name === name);
  if (!init || typeof init.data === 'function') return null;
  const b = init.data;
  if (init.type === 'int64')
    return Array.from(new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), Number);
  if (init.type === 'int32') return Array.from(new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  return null;
}

/** Broadcasts two shapes numpy-style (right-aligned). */
export function broadcastShapes(a: SShape, b: SShape): SShape {
  if (!a || !b) return null;
  const n = Math.max(a.length, b.length);
  const out: SDim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (x === y) out.push(x);
    else if (x === null) out.push(y);
    else if (y === null) out.push(x);
    else out.push(null);
  }
  return out;
}

/** True when both shapes are fully known and identical (symbols compare by name). */
export function sameShape(a: SShape, b: SShape): boolean {
  return !!a && !!b && a.length === b.length && a.every((d, i) => d !== null && d === b[i]);
}

const SAME_AS_FIRST = new Set([
  'Identity',
  'Neg',
  'Sqrt',
  'Reciprocal',
  'Exp',
  'Log',
  'Sigmoid',
  'Tanh',
  'Relu',
  'Abs',
  'Cast',
  'Softmax',
  'LogSoftmax',
  'Not',
  'ScatterElements',
  'ScatterND',
  'Erf',
  'Floor',
  'Ceil',
]);
const BROADCAST = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Where',
  'Max',
  'Min',
]);

/** Computes the static shapes of every value of `g` (inputs, initializers, node outputs in order). */
export function inferShapes(g: Graph): Map<string, SShape> {
  const shapes = new Map<string, SShape>();
  for (const v of g.inputs) shapes.set(v.name, [...v.dims]);
  for (const i of g.initializers) shapes.set(i.name, [...i.dims]);
  for (const node of g.nodes) {
    const outs = nodeShapes(g, node, (n) => (n === '' ? null : (shapes.get(n) ?? null)));
    node.outputs.forEach((o, k) => o && shapes.set(o, outs[k] ?? null));
  }
  return shapes;
}

/** The output shapes of one node given its input shapes. */
export function nodeShapes(g: Graph, node: GraphNode, shapeOf: (name: string) => SShape): SShape[] {
  const ins = node.inputs.map(shapeOf);
  const x = ins[0];
  const attrI = (k: string, d: number) => {
    const a = node.attributes[k];
    return a && 'i' in a ? a.i : d;
  };
  const attrInts = (k: string) => {
    const a = node.attributes[k];
    return a && 'ints' in a ? a.ints : null;
  };
  const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
  const op = node.opType;
  if (SAME_AS_FIRST.has(op)) return [x];
  if (BROADCAST.has(op)) return [ins.reduce((a, b) => broadcastShapes(a, b))];
  switch (op) {
    case 'MatMul': {
      const [a, b] = ins;
      if (!a || !b || a.length < 2 || b.length < 2) return [null];
      const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
      return [batch ? [...batch, a[a.length - 2], b[b.length - 1]] : null];
    }
    case 'Transpose': {
      if (!x) return [null];
      const perm = attrInts('perm') ?? x.map((_, i) => x.length - 1 - i);
      return [perm.map((p) => x[p])];
    }
    case 'Reshape': {
      const target = constantInts(g, node.inputs[1]);
      if (!target) {
        const s = ins[1];
        return [s && typeof s[0] === 'number' ? Array<SDim>(s[0]).fill(null) : null];
      }
      const out: SDim[] = target.map((v, i) => (v === 0 ? (x?.[i] ?? null) : v === -1 ? null : v));
      const minus = target.indexOf(-1);
      if (minus >= 0 && x)
        out[minus] = inferredDim(
          x,
          out.filter((_, i) => i !== minus),
        );
      return [out];
    }
    case 'Unsqueeze': {
      const axes = constantInts(g, node.inputs[1]);
      if (!x || !axes) return [null];
      const rank = x.length + axes.length;
      const set = new Set(axes.map((a) => norm(a, rank)));
      const out: SDim[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x[k++]);
      return [out];
    }
    case 'Squeeze': {
      const axes = constantInts(g, node.inputs[1]);
      if (!x || !axes) return [null];
      const set = new Set(axes.map((a) => norm(a, x.length)));
      return [x.filter((_, i) => !set.has(i))];
    }
    case 'Gather': {
      const [data, idx] = ins;
      if (!data || !idx) return [null];
      const axis = norm(attrI('axis', 0), data.length);
      return [[...data.slice(0, axis), ...idx, ...data.slice(axis + 1)]];
    }
    case 'GatherElements':
      return [ins[1]];
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax': {
      if (!x) return [null];
      const axes = node.inputs[1] ? constantInts(g, node.inputs[1]) : x.map((_, i) => i);
      if (!axes) return [null];
      const set = new Set(axes.map((a) => norm(a, x.length)));
      const keep = attrI('keepdims', 1) === 1;
      return [keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i))];
    }
    case 'Concat': {
      if (ins.some((s) => !s)) return [null];
      const axis = norm(attrI('axis', 0), x!.length);
      const out = [...x!];
      const sizes = ins.map((s) => s![axis]);
      out[axis] = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : null;
      return [out];
    }
    case 'Split': {
      if (!x) return node.outputs.map(() => null);
      const axis = norm(attrI('axis', 0), x.length);
      const split = node.inputs[1] ? constantInts(g, node.inputs[1]) : null;
      return node.outputs.map((_, k) => x.map((d, i) => (i === axis ? (split ? split[k] : null) : d)));
    }
    case 'Slice': {
      if (!x) return [null];
      const axes = node.inputs[3] ? constantInts(g, node.inputs[3]) : x.map((_, i) => i);
      const starts = constantInts(g, node.inputs[1]);
      const ends = constantInts(g, node.inputs[2]);
      const out = [...x];
      (axes ?? []).forEach((a, k) => {
        const ax = norm(a, x.length);
        const dim = x[ax];
        out[ax] =
          starts && ends && typeof dim === 'number' && starts[k] >= 0 && ends[k] >= 0
            ? Math.max(0, Math.min(ends[k], dim) - starts[k])
            : null;
      });
      return [axes ? out : x.map(() => null)];
    }
    case 'Expand': {
      const target = constantInts(g, node.inputs[1]);
      return [target ? broadcastShapes(x, target) : null];
    }
    case 'Shape':
      return [x ? [x.length] : [null]];
    case 'Size':
      return [[]];
    case 'ConstantOfShape': {
      const target = constantInts(g, node.inputs[0]);
      if (target) return [target];
      const s = ins[0];
      return [s && typeof s[0] === 'number' ? Array<SDim>(s[0]).fill(null) : null];
    }
    case 'Range':
      return [[null]];
    default:
      return node.outputs.map(() => null);
  }
}

/**
 * The extent Reshape's −1 takes: the input's size divided by the other output dims, worked out over numbers and
 * symbols (e.g. [B, K, G, T, E] → [B, H, −1, E] with K·G = H gives T). Null when it is not a single symbol or number.
 */
function inferredDim(input: SDim[], others: SDim[]): SDim {
  if (input.some((d) => d === null) || others.some((d) => d === null)) return null;
  const symbols = input.filter((d): d is string => typeof d === 'string');
  let ratio = 1;
  for (const d of input) if (typeof d === 'number') ratio *= d;
  for (const d of others) {
    if (typeof d === 'number') ratio /= d;
    else {
      const at = symbols.indexOf(d as string);
      if (at < 0) return null;
      symbols.splice(at, 1);
    }
  }
  if (symbols.length === 0) return Number.isInteger(ratio) ? ratio : null;
  return symbols.length === 1 && ratio === 1 ? symbols[0] : null;
}
