/**
 * AdamW (decoupled weight decay) with global gradient-norm clipping, emitted as graph ops so that a training step
 * is one session run. Bias corrections are computed by the host from the step number and fed as scalars.
 *
 *   g' = g · min(1, clip / (‖g‖ + 1e-6))
 *   m' = β₁m + (1 − β₁)g'        v' = β₂v + (1 − β₂)g'²
 *   p' = p − lr · ( (m'·c₁) / (√(v'·c₂) + ε) + wd·p )        c₁ = 1/(1 − β₁ᵗ), c₂ = 1/(1 − β₂ᵗ)
 */
import type { Graph } from '../../graph/ir.ts';
import type { TrainFloat } from '../autodiff/context.ts';
import type { ParamInfo } from '../params.ts';

/** AdamW hyper-parameters. */
export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip the global gradient norm to this (0 = no clipping) */
  maxGradNorm: number;
}

/** Defaults close to common fine-tuning recipes. */
export const DEFAULT_ADAMW: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 };

/** Names of the optimizer's scalar inputs. */
export const OPTIMIZER_INPUTS = { lr: 'lr', bias1: 'bias_correction1', bias2: 'bias_correction2' } as const;

/** Per-parameter value names of a step graph. */
export const stateNames = (p: string) => ({
  m: `m/${p}`,
  v: `v/${p}`,
  newParam: `new/${p}`,
  newM: `new_m/${p}`,
  newV: `new_v/${p}`,
});

/**
 * Emits the update of every parameter from its gradient. Declares the moment inputs and scalar inputs; returns the
 * global gradient norm (before clipping) and declares the updated parameters and moments as outputs.
 */
export function emitAdamW(
  g: Graph,
  ft: TrainFloat,
  params: readonly ParamInfo[],
  grads: ReadonlyMap<string, string>,
  opt: AdamWOptions,
): string {
  const c = (v: number) => g.constant(ft, [v], []);
  const lr = g.input(OPTIMIZER_INPUTS.lr, ft, [], 'learning rate of this step');
  const bias1 = g.input(OPTIMIZER_INPUTS.bias1, ft, [], '1 / (1 − β₁ᵗ)');
  const bias2 = g.input(OPTIMIZER_INPUTS.bias2, ft, [], '1 / (1 − β₂ᵗ)');
  const squares = params.map((p) => {
    const gr = grads.get(p.name)!;
    return g.op1(
      'ReduceSum',
      [g.op1('Mul', [gr, gr], {}, `/optimizer/norm/${p.name}/square`)],
      { keepdims: { i: 0 } },
      `/optimizer/norm/${p.name}/sum`,
    );
  });
  const sumSq = squares.reduce((acc, s, k) => (k === 0 ? s : g.op1('Add', [acc, s], {}, `/optimizer/norm/acc/${k}`)));
  const norm = g.op1('Sqrt', [sumSq], {}, '/optimizer/norm/Sqrt');
  const factor =
    opt.maxGradNorm > 0
      ? g.op1(
          'Min',
          [
            c(1),
            g.op1(
              'Div',
              [c(opt.maxGradNorm), g.op1('Add', [norm, c(1e-6)], {}, '/optimizer/clip/Add')],
              {},
              '/optimizer/clip/Div',
            ),
          ],
          {},
          '/optimizer/clip/Min',
        )
      : c(1);
  for (const p of params) {
    const s = stateNames(p.name);
    const path = `/optimizer/${p.name}`;
    const m = g.input(s.m, ft, p.shape, `AdamW first moment of ${p.name}`);
    const v = g.input(s.v, ft, p.shape, `AdamW second moment of ${p.name}`);
    const gr = g.op1('Mul', [grads.get(p.name)!, factor], {}, `${path}/clip`);
    const m2 = g.op1(
      'Add',
      [g.op1('Mul', [m, c(opt.beta1)], {}, `${path}/m/decay`), g.op1('Mul', [gr, c(1 - opt.beta1)], {}, `${path}/m/new`)],
      {},
      `${path}/m/Add`,
    );
    const gr2 = g.op1('Mul', [gr, gr], {}, `${path}/g2`);
    const v2 = g.op1(
      'Add',
      [g.op1('Mul', [v, c(opt.beta2)], {}, `${path}/v/decay`), g.op1('Mul', [gr2, c(1 - opt.beta2)], {}, `${path}/v/new`)],
      {},
      `${path}/v/Add`,
    );
    const mHat = g.op1('Mul', [m2, bias1], {}, `${path}/m_hat`);
    const denom = g.op1(
      'Add',
      [g.op1('Sqrt', [g.op1('Mul', [v2, bias2], {}, `${path}/v_hat`)], {}, `${path}/Sqrt`), c(opt.eps)],
      {},
      `${path}/denom`,
    );
    let step = g.op1('Div', [mHat, denom], {}, `${path}/Div`);
    if (p.decay && opt.weightDecay > 0)
      step = g.op1('Add', [step, g.op1('Mul', [p.name, c(opt.weightDecay)], {}, `${path}/decay`)], {}, `${path}/with_decay`);
    const next = g.op1('Sub', [p.name, g.op1('Mul', [step, lr], {}, `${path}/lr`)], {}, `${path}/Sub`);
    g.output(next, s.newParam, ft, p.shape);
    g.output(m2, s.newM, ft, p.shape);
    g.output(v2, s.newV, ft, p.shape);
  }
  return norm;
}
