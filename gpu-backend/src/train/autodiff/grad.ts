/**
 * Reverse-mode differentiation over the project's graph representation. `addGradients` appends to a forward graph
 * the ops computing d loss / d w for each requested value w: it walks the nodes that both depend on some w and
 * feed the loss, last to first, and asks each op's rule for its inputs' gradients. Contributions that reach a
 * value along several paths are summed. The result is plain ONNX, run by the same sessions as any other graph.
 */
import type { Graph, GraphNode } from '../../graph/ir.ts';
import { GradContext, type TrainFloat } from './context.ts';
import type { GradRule } from './rule.ts';
import { MATH_RULES } from './rules-math.ts';
import { TENSOR_RULES } from './rules-tensor.ts';
import { inferShapes } from './shapes.ts';

const RULES: Record<string, GradRule> = { ...MATH_RULES, ...TENSOR_RULES };

/** Ops whose outputs carry no gradient (shapes, comparisons, index computations). */
const NON_DIFFERENTIABLE = new Set([
  'Shape',
  'Size',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'ArgMax',
  'ArgMin',
  'NonZero',
  'Range',
  'ConstantOfShape',
  'OneHot',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
]);

/** Op types `addGradients` can differentiate. */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.keys(RULES);

/** Options of `addGradients`. */
export interface GradientOptions {
  /** the float type of the graph's activations and of the emitted constants */
  floatType: TrainFloat;
}

/**
 * Emits the gradient of the scalar `loss` with respect to each name in `wrt` (graph inputs or initializers) and
 * returns a map from each such name to the name of its gradient value (zeros when the loss does not depend on it).
 */
export function addGradients(g: Graph, loss: string, wrt: readonly string[], opts: GradientOptions): Map<string, string> {
  const shapes = inferShapes(g);
  const ctx = new GradContext(g, opts.floatType, shapes);
  const forward = [...g.nodes];
  const active = activeValues(forward, wrt);
  const feedsLoss = valuesFeeding(forward, loss);
  const contributions = new Map<string, string[]>();
  const push = (v: string, d: string) => {
    const list = contributions.get(v);
    if (list) list.push(d);
    else contributions.set(v, [d]);
  };
  push(
    loss,
    ctx.op1(
      'ConstantOfShape',
      [ctx.shapeOf(loss)],
      { value: { t: { name: 'value', type: opts.floatType, dims: [1], data: scalarBytes(opts.floatType, 1), external: false } } },
      '/seed',
      ctx.shape(loss),
    ),
  );
  const total = (v: string): string | null => {
    const list = contributions.get(v);
    if (!list || list.length === 0) return null;
    let acc = list[0];
    for (let k = 1; k < list.length; k++) acc = ctx.op1('Add', [acc, list[k]], {}, `/accumulate/${v}`, ctx.shape(v));
    contributions.set(v, [acc]);
    return acc;
  };
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!node.outputs.some((o) => feedsLoss.has(o)) || !node.inputs.some((x) => active.has(x))) continue;
    if (NON_DIFFERENTIABLE.has(node.opType)) continue;
    const dOut = node.outputs.map((o) => (o ? total(o) : null));
    if (dOut.every((d) => d === null)) continue;
    const rule = RULES[node.opType];
    if (!rule) {
      throw new Error(
        `autodiff: no gradient rule for ${node.opType} (node ${node.name}); differentiable ops: ${DIFFERENTIABLE_OPS.join(', ')}`,
      );
    }
    const needs = node.inputs.map((x) => x !== '' && active.has(x));
    const dIn = rule(ctx, node, dOut, needs);
    node.inputs.forEach((x, k) => {
      if (needs[k] && dIn[k]) push(x, dIn[k]!);
    });
  }
  const result = new Map<string, string>();
  for (const w of wrt) result.set(w, total(w) ?? ctx.zerosLike(w, `/unused/${w}`));
  return result;
}

/** Values that depend on any of `wrt` through differentiable ops. */
function activeValues(nodes: readonly GraphNode[], wrt: readonly string[]): Set<string> {
  const active = new Set(wrt);
  for (const node of nodes) {
    if (NON_DIFFERENTIABLE.has(node.opType)) continue;
    const touches = node.inputs.some((x) => active.has(x)) || subgraphReads(node).some((x) => active.has(x));
    if (!touches) continue;
    if (Object.values(node.attributes).some((a) => 'g' in a)) {
      throw new Error(
        `autodiff: ${node.name}: ${node.opType} with subgraphs is not differentiable; build the training forward without control flow`,
      );
    }
    for (const o of node.outputs) if (o) active.add(o);
  }
  return active;
}

/** Values the loss depends on (including the loss). */
function valuesFeeding(nodes: readonly GraphNode[], loss: string): Set<string> {
  const need = new Set([loss]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (node.outputs.some((o) => need.has(o))) for (const x of node.inputs) if (x) need.add(x);
  }
  return need;
}

/** Names read inside a node's subgraphs (outer-scope values an If or Loop body captures). */
function subgraphReads(node: GraphNode): string[] {
  const out: string[] = [];
  for (const a of Object.values(node.attributes)) {
    if (!('g' in a)) continue;
    for (const n of a.g.nodes) out.push(...n.inputs, ...subgraphReads(n));
  }
  return out;
}

function scalarBytes(ft: TrainFloat, v: number): Uint8Array {
  return new Uint8Array((ft === 'float32' ? Float32Array.of(v) : Float64Array.of(v)).buffer);
}
