/**
 * Gradient rules of elementwise arithmetic, activations and the softmax family. Y is a node's output, dY its
 * gradient; broadcast inputs get their gradient summed back to their own shape.
 */
import type { GraphNode } from '../../graph/ir.ts';
import { FLOAT_CODE, type GradContext } from './context.ts';
import type { GradRule } from './rule.ts';

const y0 = (n: GraphNode) => n.outputs[0];

/** dY summed to the shape of input k. */
function toInput(ctx: GradContext, node: GraphNode, d: string, k: number, what: string): string {
  return ctx.unbroadcast(d, ctx.shape(y0(node)), node.inputs[k], `${node.name}/${what}`);
}

const add: GradRule = (ctx, node, [dy], needs) => [
  needs[0] ? toInput(ctx, node, dy!, 0, 'a') : null,
  needs[1] ? toInput(ctx, node, dy!, 1, 'b') : null,
];

const sub: GradRule = (ctx, node, [dy], needs) => [
  needs[0] ? toInput(ctx, node, dy!, 0, 'a') : null,
  needs[1] ? toInput(ctx, node, ctx.op1('Neg', [dy!], {}, `${node.name}/b/Neg`, ctx.shape(y0(node))), 1, 'b') : null,
];

const mul: GradRule = (ctx, node, [dy], needs) => {
  const [a, b] = node.inputs;
  const s = ctx.shape(y0(node));
  return [
    needs[0] ? toInput(ctx, node, ctx.op1('Mul', [dy!, b], {}, `${node.name}/a/Mul`, s), 0, 'a') : null,
    needs[1] ? toInput(ctx, node, ctx.op1('Mul', [dy!, a], {}, `${node.name}/b/Mul`, s), 1, 'b') : null,
  ];
};

// d(a/b)/da = 1/b;  d(a/b)/db = −a/b² = −Y/b
const div: GradRule = (ctx, node, [dy], needs) => {
  const [, b] = node.inputs;
  const s = ctx.shape(y0(node));
  const da = needs[0] ? toInput(ctx, node, ctx.op1('Div', [dy!, b], {}, `${node.name}/a/Div`, s), 0, 'a') : null;
  let db: string | null = null;
  if (needs[1]) {
    const t = ctx.op1('Div', [ctx.op1('Mul', [dy!, y0(node)], {}, `${node.name}/b/Mul`, s), b], {}, `${node.name}/b/Div`, s);
    db = toInput(ctx, node, ctx.op1('Neg', [t], {}, `${node.name}/b/Neg`, s), 1, 'b');
  }
  return [da, db];
};

// Y = X^c with a constant exponent c: dX = dY·c·X^(c−1)
const pow: GradRule = (ctx, node, [dy], needs) => {
  if (needs[1])
    throw new Error(`autodiff: ${node.name}: Pow is differentiable in its base only (the exponent must be a constant)`);
  const [x, c] = node.inputs;
  const s = ctx.shape(x);
  const cm1 = ctx.op1('Sub', [c, ctx.scalar(1)], {}, `${node.name}/c_minus_1`);
  const t = ctx.op1('Mul', [ctx.op1('Pow', [x, cm1], {}, `${node.name}/Pow`, s), c], {}, `${node.name}/Mul_c`, s);
  return [ctx.op1('Mul', [dy!, t], {}, `${node.name}/Mul`, s), null];
};

const neg: GradRule = (ctx, node, [dy]) => [ctx.op1('Neg', [dy!], {}, `${node.name}/Neg`, ctx.shape(node.inputs[0]))];

const identity: GradRule = (_ctx, _node, [dy]) => [dy];

// only float → the training float type: the gradient passes unchanged
const cast: GradRule = (ctx, node, [dy]) => {
  const to = node.attributes.to;
  if (!to || !('i' in to) || to.i !== FLOAT_CODE[ctx.ft])
    throw new Error(`autodiff: ${node.name}: only casts to the graph's float type are differentiable`);
  return [dy];
};

// Y = √X: dX = dY / (2Y)
const sqrt: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const twice = ctx.op1('Mul', [y0(node), ctx.scalar(2)], {}, `${node.name}/2y`, s);
  return [ctx.op1('Div', [dy!, twice], {}, `${node.name}/Div`, s)];
};

// Y = 1/X: dX = −dY·Y²
const reciprocal: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const y2 = ctx.op1('Mul', [y0(node), y0(node)], {}, `${node.name}/y2`, s);
  return [ctx.op1('Neg', [ctx.op1('Mul', [dy!, y2], {}, `${node.name}/Mul`, s)], {}, `${node.name}/Neg`, s)];
};

const exp: GradRule = (ctx, node, [dy]) => [ctx.op1('Mul', [dy!, y0(node)], {}, `${node.name}/Mul`, ctx.shape(y0(node)))];

const log: GradRule = (ctx, node, [dy]) => [ctx.op1('Div', [dy!, node.inputs[0]], {}, `${node.name}/Div`, ctx.shape(y0(node)))];

// σ' = Y(1 − Y)
const sigmoid: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const oneMinus = ctx.op1('Sub', [ctx.scalar(1), y0(node)], {}, `${node.name}/1-y`, s);
  const d = ctx.op1('Mul', [y0(node), oneMinus], {}, `${node.name}/dsigma`, s);
  return [ctx.op1('Mul', [dy!, d], {}, `${node.name}/Mul`, s)];
};

// tanh' = 1 − Y²
const tanh: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const y2 = ctx.op1('Mul', [y0(node), y0(node)], {}, `${node.name}/y2`, s);
  const d = ctx.op1('Sub', [ctx.scalar(1), y2], {}, `${node.name}/1-y2`, s);
  return [ctx.op1('Mul', [dy!, d], {}, `${node.name}/Mul`, s)];
};

function axisOf(node: GraphNode): number {
  const a = node.attributes.axis;
  return a && 'i' in a ? a.i : -1;
}

// dX = Y ⊙ (dY − Σ_axis dY ⊙ Y)
const softmax: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const axis = ctx.g.constant('int64', [axisOf(node)]);
  const prod = ctx.op1('Mul', [dy!, y0(node)], {}, `${node.name}/dy_y`, s);
  const sum = ctx.op1('ReduceSum', [prod, axis], { keepdims: { i: 1 } }, `${node.name}/ReduceSum`);
  const centered = ctx.op1('Sub', [dy!, sum], {}, `${node.name}/Sub`, s);
  return [ctx.op1('Mul', [y0(node), centered], {}, `${node.name}/Mul`, s)];
};

// Y = log softmax(X): dX = dY − softmax(X) ⊙ Σ_axis dY
const logSoftmax: GradRule = (ctx, node, [dy]) => {
  const s = ctx.shape(y0(node));
  const axis = ctx.g.constant('int64', [axisOf(node)]);
  const p = ctx.op1('Exp', [y0(node)], {}, `${node.name}/softmax`, s);
  const sum = ctx.op1('ReduceSum', [dy!, axis], { keepdims: { i: 1 } }, `${node.name}/ReduceSum`);
  return [ctx.op1('Sub', [dy!, ctx.op1('Mul', [p, sum], {}, `${node.name}/Mul`, s)], {}, `${node.name}/Sub`, s)];
};

// Where(cond, a, b): the gradient goes to the branch that was chosen
const where: GradRule = (ctx, node, [dy], needs) => {
  const [cond] = node.inputs;
  const s = ctx.shape(y0(node));
  const zero = ctx.scalar(0);
  return [
    null,
    needs[1] ? toInput(ctx, node, ctx.op1('Where', [cond, dy!, zero], {}, `${node.name}/a/Where`, s), 1, 'a') : null,
    needs[2] ? toInput(ctx, node, ctx.op1('Where', [cond, zero, dy!], {}, `${node.name}/b/Where`, s), 2, 'b') : null,
  ];
};

/** Rules of the elementwise and softmax ops, by op type. */
export const MATH_RULES: Record<string, GradRule> = {
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
  Pow: pow,
  Neg: neg,
  Identity: identity,
  Cast: cast,
  Sqrt: sqrt,
  Reciprocal: reciprocal,
  Exp: exp,
  Log: log,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  Where: where,
};
