/**
 * TrRa's objective as bench/toy/README.md writes it down, checked against the loss graph the trainer builds
 * (`emitLoss`) on a tiny float64 case:
 *
 *   L(z) = Σ_{b,t} w[b,t] · Σ_v q[b,t,v] · (log q[b,t,v] − log p[b,t,v])        (reverse KL, 'kl-reverse')
 *   q[b,t,·] = softmax_v(z[b,t,·])                                               (over the vocabulary axis)
 *   log p[b,t,·] = log softmax_v(λ·a[b,t,·] + (1 − λ)·r[b,t,·])                  (the fusion teacher)
 *   w[b,t] = 1/N where position t of row b predicts a response token, 0 at prompt and pad positions
 *
 * whose gradient, derived by hand, is ∂L/∂z[b,t,u] = w[b,t] · q_u · (g_u − Σ_v q_v g_v) with g = log q − log p;
 * the forward KL Σ p (log p − log q) has ∂L/∂z = w · (q − p). The analytic gradient of the graph (realign's
 * autodiff, run by ONNX Runtime) must equal these formulas computed here in plain float64 arithmetic, and central
 * finite differences of the graph's loss.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NormalStream } from '../../../gpu-backend/src/random/normal.ts';
import { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { encodeOnnxModel } from '../../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession } from '../../../gpu-backend/src/ort/session.ts';
import { addGradients } from '../../../gpu-backend/src/train/autodiff/grad.ts';
import { gradCheck } from '../../../gpu-backend/src/train/autodiff/gradcheck.ts';
import { makeBatch } from '../../../gpu-backend/src/train/batches.ts';
import { emitLoss, type LossKind } from '../../../gpu-backend/src/train/model/losses.ts';
import { testSeed } from '../helpers/models.ts';

// float64 graph against float64 formulas: both sides round at ~1e-16 relative; 1e-10 leaves room for the
// different summation orders over a few dozen terms and nothing else.
const TOL = 1e-10;

const B = 2;
const T = 5;
const V = 7;
const LAMBDA = 2;

function logSoftmax(x: Float64Array, off: number): Float64Array {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, x[off + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[off + v] - max);
  const lse = max + Math.log(s);
  return Float64Array.from({ length: V }, (_, v) => x[off + v] - lse);
}

/** A tiny case: student logits z, the teacher's log-probabilities from random aligned and reference logits, weights from a real batch. */
function tinyCase(seed: number) {
  const rng = new NormalStream(seed);
  const z = Float64Array.from({ length: B * T * V }, () => 2 * rng.normal());
  const fused = Float64Array.from({ length: B * T * V }, () => {
    const a = 2 * rng.normal();
    const r = 2 * rng.normal();
    return LAMBDA * a + (1 - LAMBDA) * r;
  });
  const logp = new Float64Array(B * T * V);
  for (let i = 0; i < B * T; i++) logp.set(logSoftmax(fused, i * V), i * V);
  // row 0: 3 prompt tokens, then 3 response tokens (the last one EOS); row 1: 2 prompt tokens, 2 response, padded
  const batch = makeBatch(
    [
      { ids: [1, 2, 3, 4, 5, 6], promptLength: 3 },
      { ids: [1, 2, 4, 6], promptLength: 2 },
    ],
    0,
  );
  const w = Float64Array.from(batch.mask, (m) => m / batch.responseTokens);
  return { z, logp, w, batch };
}

/** The written formula: loss and ∂L/∂z, in plain float64 arithmetic. */
function formula(kind: LossKind, z: Float64Array, logp: Float64Array, w: Float64Array): { loss: number; grad: Float64Array } {
  let loss = 0;
  const grad = new Float64Array(z.length);
  for (let i = 0; i < B * T; i++) {
    const logq = logSoftmax(z, i * V);
    const q = logq.map(Math.exp);
    const lp = logp.subarray(i * V, (i + 1) * V);
    const p = lp.map(Math.exp);
    if (kind === 'kl-reverse') {
      const g = logq.map((lq, v) => lq - lp[v]);
      const mean = q.reduce((s, qv, v) => s + qv * g[v], 0);
      loss += w[i] * mean;
      for (let u = 0; u < V; u++) grad[i * V + u] = w[i] * q[u] * (g[u] - mean);
    } else {
      loss += w[i] * p.reduce((s, pv, v) => s + pv * (lp[v] - logq[v]), 0);
      for (let u = 0; u < V; u++) grad[i * V + u] = w[i] * (q[u] - p[u]);
    }
  }
  return { loss, grad };
}

/** The trainer's loss graph over free logits (the model's forward replaced by an input). */
function lossGraph(kind: LossKind): { g: Graph; loss: string } {
  const g = new Graph('trra_objective');
  const logits = g.input('logits', 'float64', [B, T, V]);
  const weights = g.input('weights', 'float64', [B, T]);
  const teacher = g.input('teacher', 'float64', [B, T, V]);
  return { g, loss: emitLoss(g, kind, logits, { weights, teacherLogprobs: teacher }) };
}

async function runGraph(
  kind: LossKind,
  z: Float64Array,
  logp: Float64Array,
  w: Float64Array,
): Promise<{ loss: number; grad: Float64Array }> {
  const { g, loss } = lossGraph(kind);
  const grads = addGradients(g, loss, ['logits'], { floatType: 'float64' });
  g.output(loss, 'loss', 'float64', []);
  g.output(grads.get('logits')!, 'grad', 'float64', [B, T, V]);
  const dir = mkdtempSync(join(tmpdir(), 'realign-trra-objective-'));
  try {
    const path = join(dir, 'loss.onnx');
    writeFileSync(path, encodeOnnxModel(g));
    const session = await ModelSession.open(path, { device: 'cpu', threads: 1 });
    try {
      const out = await session.run(
        {
          logits: { type: 'float64', data: z, dims: [B, T, V] },
          weights: { type: 'float64', data: w, dims: [B, T] },
          teacher: { type: 'float64', data: logp, dims: [B, T, V] },
        },
        ['loss', 'grad'],
      );
      return { loss: (out.loss.data as Float64Array)[0], grad: out.grad.data as Float64Array };
    } finally {
      await session.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const relErr = (a: Float64Array, b: Float64Array) => {
  let num = 0;
  let den = 1e-300;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
};

describe('TrRa objective', () => {
  const seed = testSeed();

  it(`the weights are 1/N at the N positions that predict a response token (EOS included) and 0 at prompt and pad positions (seed ${seed})`, () => {
    const { batch, w } = tinyCase(seed);
    // row 0 (6 ids, prompt 3): positions 0..4 predict ids 1..5; positions 2, 3, 4 predict response tokens
    // row 1 (4 ids, prompt 2): positions 0..2 predict ids 1..3; positions 1, 2 predict response tokens; 3, 4 are pads
    expect(Array.from(batch.mask)).toEqual([0, 0, 1, 1, 1, 0, 1, 1, 0, 0]);
    expect(batch.responseTokens).toBe(5);
    expect(Array.from(w).reduce((s, x) => s + x, 0)).toBeCloseTo(1, 15);
  });

  for (const kind of ['kl-reverse', 'kl-forward'] as const) {
    it(`${kind}: the loss graph's value and autodiff gradient equal the written formula, softmax over the vocabulary axis, masked positions get no gradient (seed ${seed})`, async () => {
      const { z, logp, w } = tinyCase(seed);
      const want = formula(kind, z, logp, w);
      const got = await runGraph(kind, z, logp, w);
      expect(Math.abs(got.loss - want.loss) / Math.abs(want.loss)).toBeLessThan(TOL);
      expect(relErr(got.grad, want.grad)).toBeLessThan(TOL);
      for (let i = 0; i < B * T; i++) {
        const row = got.grad.subarray(i * V, (i + 1) * V);
        // masked positions: exactly zero; every position: the gradient sums to zero over the vocabulary (a
        // per-position softmax), which a softmax over the sequence axis would not give
        if (w[i] === 0) expect(Array.from(row).every((x) => x === 0)).toBe(true);
        else expect(Math.abs(row.reduce((s, x) => s + x, 0))).toBeLessThan(1e-14);
      }
      // the sign of the direction: reverse KL is not the forward one on this case
      const other = formula(kind === 'kl-reverse' ? 'kl-forward' : 'kl-reverse', z, logp, w);
      expect(relErr(got.grad, other.grad)).toBeGreaterThan(1e-3);
    });
  }

  it(`kl-reverse: central finite differences of the loss graph agree with its autodiff gradient (seed ${seed})`, async () => {
    const { z, logp, w } = tinyCase(seed);
    const { g, loss } = lossGraph('kl-reverse');
    const [res] = await gradCheck(
      g,
      loss,
      {
        logits: { type: 'float64', data: z, dims: [B, T, V] },
        weights: { type: 'float64', data: w, dims: [B, T] },
        teacher: { type: 'float64', data: logp, dims: [B, T, V] },
      },
      ['logits'],
    );
    expect(res.relErr).toBeLessThan(1e-7);
    expect(
      relErr(
        res.analytic,
        Float64Array.from(
          res.analytic.map((_, k) => formula('kl-reverse', z, logp, w).grad[Math.floor((k * z.length) / res.analytic.length)]),
        ),
      ),
    ).toBeLessThan(TOL);
  });
});
