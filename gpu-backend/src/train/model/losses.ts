/**
 * Training losses over logits [B, T, V], each a weighted sum over positions: the per-position weights [B, T] are 0
 * at prompt and pad positions and 1/N at the N response positions of an optimizer step, so the loss is the mean
 * over response tokens even when a step is accumulated from several micro-batches.
 */
import type { Graph } from '../../graph/ir.ts';

/** Which loss a training graph minimises. */
export type LossKind = 'sft' | 'kl-forward' | 'kl-reverse';

/** Inputs a loss reads besides the logits. */
export interface LossInputs {
  /** float [B, T]: weight of each position */
  weights: string;
  /** sft: int64 [B, T], the token each position must predict */
  targets?: string;
  /** kl: float [B, T, V], the teacher's log-probabilities */
  teacherLogprobs?: string;
}

/** Emits the loss (a scalar). */
export function emitLoss(g: Graph, kind: LossKind, logits: string, io: LossInputs): string {
  const logq = g.op1('LogSoftmax', [logits], { axis: { i: -1 } }, '/loss/LogSoftmax'); // [B, T, V]
  let perPosition: string; // [B, T]
  if (kind === 'sft') {
    // cross-entropy: −log q(target)
    const idx = g.op1('Unsqueeze', [need(io.targets, 'targets'), g.constant('int64', [-1])], {}, '/loss/targets/Unsqueeze'); // [B, T, 1]
    const picked = g.op1('GatherElements', [logq, idx], { axis: { i: -1 } }, '/loss/GatherElements'); // [B, T, 1]
    perPosition = g.op1('Neg', [g.op1('Squeeze', [picked, g.constant('int64', [-1])], {}, '/loss/Squeeze')], {}, '/loss/Neg');
  } else {
    const logp = need(io.teacherLogprobs, 'teacherLogprobs');
    // forward KL(teacher ‖ student) = Σ p (log p − log q); reverse KL(student ‖ teacher) = Σ q (log q − log p)
    const forward = kind === 'kl-forward';
    const probs = g.op1('Exp', [forward ? logp : logq], {}, '/loss/probs');
    const gap = forward ? g.op1('Sub', [logp, logq], {}, '/loss/gap') : g.op1('Sub', [logq, logp], {}, '/loss/gap');
    perPosition = g.op1(
      'ReduceSum',
      [g.op1('Mul', [probs, gap], {}, '/loss/Mul'), g.constant('int64', [-1])],
      { keepdims: { i: 0 } },
      '/loss/ReduceSum',
    ); // [B, T]
  }
  const weighted = g.op1('Mul', [perPosition, io.weights], {}, '/loss/weighted');
  return g.op1('ReduceSum', [weighted], { keepdims: { i: 0 } }, '/loss/total'); // []
}

function need(v: string | undefined, what: string): string {
  if (!v) throw new Error(`loss: missing input ${what}`);
  return v;
}
