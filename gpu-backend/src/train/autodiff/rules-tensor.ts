/**
 * Gradient rules of the ops that move, select, reduce or contract tensors: MatMul, layout ops, Gather (embedding
 * lookups), reductions, Concat/Split/Slice.
 */
import type { Attr, GraphNode } from '../../graph/ir.ts';
import { FLOAT_CODE, type GradContext } from './context.ts';
import type { GradRule } from './rule.ts';

/**
 * Y = A·B (batched, rank ≥ 2): dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over the batch axes it was broadcast along.
 * A weight B [K, N] against activations A [.., M, K] gets its gradient from the flattened rows in one MatMul:
 * dB = A₂ᵀ·dY₂ with A₂ [rows, K], dY₂ [rows, N].
 */
const matmul: GradRule = (ctx, node, [dy], needs) => {
  const [a, b] = node.inputs;
  const y = node.outputs[0];
  const sy = ctx.shape(y);
  let da: string | null = null;
  let db: string | null = null;
  if (needs[0]) {
    const sa = ctx.shape(a);
    const raw = ctx.op1(
      'MatMul',
      [dy!, ctx.swapLast(b, `${node.name}/a`)],
      {},
      `${node.name}/a/MatMul`,
      sy && sa ? [...sy.slice(0, -1), sa[sa.length - 1]] : null,
    );
    da = ctx.unbroadcast(raw, ctx.shape(raw), a, `${node.name}/a`);
  }
  if (needs[1]) {
    const rb = ctx.rank(b, 'MatMul');
    const ra = ctx.rank(a, 'MatMul');
    const sb = ctx.shape(b)!;
    if (rb === 2 && ra > 2) {
      const a2 = ctx.op1('Reshape', [a, ctx.g.constant('int64', [-1, lastDim(ctx, a)])], {}, `${node.name}/b/flat_a`, [
        null,
        sb[0],
      ]);
      const dy2 = ctx.op1('Reshape', [dy!, ctx.g.constant('int64', [-1, lastDim(ctx, y)])], {}, `${node.name}/b/flat_dy`, [
        null,
        sb[1],
      ]);
      const at = ctx.op1('Transpose', [a2], { perm: { ints: [1, 0] } }, `${node.name}/b/T`, [sb[0], null]);
      db = ctx.op1('MatMul', [at, dy2], {}, `${node.name}/b/MatMul`, sb);
    } else {
      const sa = ctx.shape(a);
      const raw = ctx.op1(
        'MatMul',
        [ctx.swapLast(a, `${node.name}/b`), dy!],
        {},
        `${node.name}/b/MatMul`,
        sy && sa ? [...sy.slice(0, -2), sa[sa.length - 1], sy[sy.length - 1]] : null,
      );
      db = ctx.unbroadcast(raw, ctx.shape(raw), b, `${node.name}/b`);
    }
  }
  return [da, db];
};

/** The static last dimension of a value (flattening for a weight gradient needs it). */
function lastDim(ctx: GradContext, v: string): number {
  const s = ctx.shape(v);
  const d = s?.[s.length - 1];
  if (typeof d !== 'number')
    throw new Error(`autodiff: the last dimension of "${v}" must be static to flatten it for a weight gradient`);
  return d;
}

const transpose: GradRule = (ctx, node, [dy]) => {
  const p = node.attributes.perm;
  const r = ctx.rank(node.inputs[0], 'Transpose');
  const perm = p && 'ints' in p ? p.ints : Array.from({ length: r }, (_, i) => r - 1 - i);
  const inv = new Array<number>(perm.length);
  perm.forEach((q, i) => (inv[q] = i));
  return [ctx.op1('Transpose', [dy!], { perm: { ints: inv } }, `${node.name}/Transpose`, ctx.shape(node.inputs[0]))];
};

/** Reshape, Unsqueeze, Squeeze, Flatten: the gradient takes the input's shape back. */
const reshapeBack: GradRule = (ctx, node, [dy], needs) => {
  const x = node.inputs[0];
  const sx = ctx.shape(x);
  const target = sx && sx.every((d) => typeof d === 'number') ? ctx.g.constant('int64', sx as number[]) : ctx.shapeOf(x);
  return [ctx.op1('Reshape', [dy!, target], {}, `${node.name}/Reshape`, sx), ...needs.slice(1).map(() => null)];
};

const expand: GradRule = (ctx, node, [dy]) => [ctx.unbroadcast(dy!, ctx.shape(node.outputs[0]), node.inputs[0], node.name), null];

/** Gather along axis 0 (an embedding lookup): scatter-add dY into zeros of the table's shape. */
const gather: GradRule = (ctx, node, [dy], needs) => {
  if (needs[1]) throw new Error(`autodiff: ${node.name}: Gather indices are not differentiable`);
  const a = node.attributes.axis;
  if (a && 'i' in a && a.i !== 0)
    throw new Error(`autodiff: ${node.name}: only Gather along axis 0 is differentiable, got axis ${a.i}`);
  const [data, idx] = node.inputs;
  const zeros = ctx.zerosLike(data, node.name);
  const where = ctx.op1('Unsqueeze', [idx, ctx.g.constant('int64', [-1])], {}, `${node.name}/indices`);
  return [
    ctx.op1('ScatterND', [zeros, where, dy!], { reduction: { s: 'add' } }, `${node.name}/ScatterND`, ctx.shape(data)),
    null,
  ];
};

const gatherElements: GradRule = (ctx, node, [dy]) => {
  const [data, idx] = node.inputs;
  const axis = node.attributes.axis ?? { i: 0 };
  const zeros = ctx.zerosLike(data, node.name);
  return [
    ctx.op1(
      'ScatterElements',
      [zeros, idx, dy!],
      { axis, reduction: { s: 'add' } },
      `${node.name}/ScatterElements`,
      ctx.shape(data),
    ),
    null,
  ];
};

/** dY of a reduction, with the reduced axes restored as size 1 and expanded to the input's shape. */
function spreadReduced(ctx: GradContext, node: GraphNode, dy: string): string {
  const x = node.inputs[0];
  const keep = node.attributes.keepdims;
  let d = dy;
  if (keep && 'i' in keep && keep.i === 0) {
    const axes = node.inputs[1]
      ? ctx.ints(node.inputs[1], `${node.name} (keepdims=0)`)
      : Array.from({ length: ctx.rank(x, 'ReduceSum') }, (_, i) => i);
    d = ctx.op1('Unsqueeze', [dy, ctx.g.constant('int64', axes)], {}, `${node.name}/Unsqueeze`);
  }
  return ctx.op1('Expand', [d, ctx.shapeOf(x)], {}, `${node.name}/Expand`, ctx.shape(x));
}

const reduceSum: GradRule = (ctx, node, [dy], needs) => [spreadReduced(ctx, node, dy!), ...needs.slice(1).map(() => null)];

// mean = sum / n with n = |X| / |Y| (static when both shapes are)
const reduceMean: GradRule = (ctx, node, [dy], needs) => {
  const x = node.inputs[0];
  const spread = spreadReduced(ctx, node, dy!);
  const sx = ctx.shape(x);
  const sy = ctx.shape(node.outputs[0]);
  const count = (s: typeof sx) =>
    s && s.every((d) => typeof d === 'number') ? (s as number[]).reduce((a, b) => a * b, 1) : null;
  let n: string;
  const cx = count(sx);
  const cy = count(sy);
  if (cx !== null && cy !== null) n = ctx.scalar(cx / cy);
  else if (node.inputs[1] && sx && sx.length > 0) {
    // only the reduced axes need to be static
    const axes = ctx.ints(node.inputs[1], node.name).map((a) => (a < 0 ? a + sx.length : a));
    const dims = axes.map((a) => sx[a]);
    if (dims.every((d) => typeof d === 'number')) n = ctx.scalar((dims as number[]).reduce((a, b) => a * b, 1));
    else n = dynamicCount(ctx, node);
  } else n = dynamicCount(ctx, node);
  return [ctx.op1('Div', [spread, n], {}, `${node.name}/Div`, sx), ...needs.slice(1).map(() => null)];
};

function dynamicCount(ctx: GradContext, node: GraphNode): string {
  const to: Attr = { i: FLOAT_CODE[ctx.ft] };
  const sizeX = ctx.op1(
    'Cast',
    [ctx.op1('Size', [node.inputs[0]], {}, `${node.name}/size_x`)],
    { to },
    `${node.name}/size_x/Cast`,
  );
  const sizeY = ctx.op1(
    'Cast',
    [ctx.op1('Size', [node.outputs[0]], {}, `${node.name}/size_y`)],
    { to },
    `${node.name}/size_y/Cast`,
  );
  return ctx.op1('Div', [sizeX, sizeY], {}, `${node.name}/count`);
}

function axisAttr(node: GraphNode, rank: number): number {
  const a = node.attributes.axis;
  const axis = a && 'i' in a ? a.i : 0;
  return axis < 0 ? axis + rank : axis;
}

/** Concat: split dY back into the inputs' extents along the axis. */
const concat: GradRule = (ctx, node, [dy], needs) => {
  const axis = axisAttr(node, ctx.rank(node.outputs[0], 'Concat'));
  const sizes = node.inputs.map((x) => ctx.shape(x)?.[axis]);
  let split: string;
  if (sizes.every((d) => typeof d === 'number')) split = ctx.g.constant('int64', sizes as number[]);
  else {
    const parts = node.inputs.map((x, k) =>
      ctx.op1('Gather', [ctx.shapeOf(x), ctx.g.constant('int64', [axis])], { axis: { i: 0 } }, `${node.name}/size_${k}`),
    );
    split = ctx.op1('Concat', parts, { axis: { i: 0 } }, `${node.name}/sizes`);
  }
  const parts = ctx.op('Split', [dy!, split], { axis: { i: axis } }, `${node.name}/Split`, node.inputs.length);
  parts.forEach((p, k) => ctx.shapes.set(p, ctx.shape(node.inputs[k])));
  return parts.map((p, k) => (needs[k] ? p : null));
};

/** Split: concatenate the outputs' gradients (zeros for outputs nothing used). */
const split: GradRule = (ctx, node, dOut, needs) => {
  const axis = axisAttr(node, ctx.rank(node.inputs[0], 'Split'));
  const parts = node.outputs.map((o, k) => dOut[k] ?? ctx.zerosLike(o, `${node.name}/out${k}`));
  return [
    ctx.op1('Concat', parts, { axis: { i: axis } }, `${node.name}/Concat`, ctx.shape(node.inputs[0])),
    ...needs.slice(1).map(() => null),
  ];
};

/**
 * Slice with constant non-negative starts, constant ends and unit steps: dY padded with zeros back to the input's
 * extent (the padding after the slice is computed at run time when the input's extent is not static).
 */
const slice: GradRule = (ctx, node, [dy], needs) => {
  const [x, startsV, endsV, axesV, stepsV] = node.inputs;
  const rank = ctx.rank(x, 'Slice');
  const starts = ctx.ints(startsV, node.name);
  const ends = ctx.ints(endsV, node.name);
  const axes = axesV ? ctx.ints(axesV, node.name).map((a) => (a < 0 ? a + rank : a)) : starts.map((_, i) => i);
  if (stepsV && ctx.ints(stepsV, node.name).some((s) => s !== 1))
    throw new Error(`autodiff: ${node.name}: only unit-step Slice is differentiable`);
  if (starts.some((s) => s < 0) || ends.some((e) => e < 0))
    throw new Error(`autodiff: ${node.name}: Slice needs non-negative constant starts and ends to be differentiable`);
  const before = new Array<number>(rank).fill(0);
  axes.forEach((a, k) => (before[a] = starts[k]));
  // after = dim(x) − dim(y) − before, per axis, read at run time
  const sx = ctx.shapeOf(x);
  const sy = ctx.shapeOf(node.outputs[0]);
  const beforeC = ctx.g.constant('int64', before);
  const after = ctx.op1('Sub', [ctx.op1('Sub', [sx, sy], {}, `${node.name}/extent`), beforeC], {}, `${node.name}/after`);
  const pads = ctx.op1('Concat', [beforeC, after], { axis: { i: 0 } }, `${node.name}/pads`);
  return [ctx.op1('Pad', [dy!, pads], {}, `${node.name}/Pad`, ctx.shape(x)), ...needs.slice(1).map(() => null)];
};

/** Rules of the tensor ops, by op type. */
export const TENSOR_RULES: Record<string, GradRule> = {
  MatMul: matmul,
  Transpose: transpose,
  Reshape: reshapeBack,
  Unsqueeze: reshapeBack,
  Squeeze: reshapeBack,
  Flatten: reshapeBack,
  Expand: expand,
  Gather: gather,
  GatherElements: gatherElements,
  ReduceSum: reduceSum,
  ReduceMean: reduceMean,
  Concat: concat,
  Split: split,
  Slice: slice,
};
