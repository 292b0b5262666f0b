import type { GraphNode } from '../../graph/ir.ts';
import type { GradContext } from './context.ts';

/**
 * A gradient rule: given a forward node and the gradients of its outputs (null for an output nothing depends on),
 * emits the gradients of the inputs listed in `needs` and returns them (null where not needed or not
 * differentiable). Rules only emit ops; they never change the forward graph.
 */
export type GradRule = (ctx: GradContext, node: GraphNode, dOut: (string | null)[], needs: boolean[]) => (string | null)[];
