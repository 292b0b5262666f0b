/**
 * Checkpoints whose head size GroupQueryAttention refuses (it needs a multiple of 8, and of 16 with its rotary):
 * the graphs pad the heads (graph/attention-heads.ts) and must still give the float64 reference's logits, in every
 * graph mode, through prefill and cached decode steps, and through the real engine.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import type { ModelPreset } from '../../../gpu-backend/src/make/presets.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import { attentionHeadSize } from '../../../gpu-backend/src/graph/attention-heads.ts';
import type { GraphMode } from '../../../gpu-backend/src/graph/model-graph.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { collect, job, startEngine } from '../helpers/engine.ts';
import { argmax, decode, openGraph, prefill, randomTokens, type TestGraph } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

// the tolerance of the other graph tests: float32 ONNX against the float64 reference, relative to the largest logit
const TOL = 1e-4;

afterAll(cleanupTempDirs);
const seed = testSeed();

/** Head sizes GroupQueryAttention refuses: 12, 20 and 6 (not multiples of 8), 24 (a multiple of 8, not of 16). */
const SHAPES = {
  e12: { hiddenSize: 96, numHeads: 8, numKvHeads: 2, headDim: 12 },
  e20: { hiddenSize: 80, numHeads: 4, numKvHeads: 2, headDim: 20 },
  e24: { hiddenSize: 96, numHeads: 4, numKvHeads: 1, headDim: 24 },
  e6: { hiddenSize: 48, numHeads: 8, numKvHeads: 4, headDim: 6 },
} satisfies Record<string, Partial<ModelPreset>>;

/** The reference logits [T, V] of a sequence: its forward pass(es) once, then the blend at any λ. */
type RefLogits = (tokens: number[]) => (lambda: number) => Float64Array;

/**
 * Prefills three prompts of different lengths (every position projected, each at every λ), then runs `steps` cached
 * decode steps fed with the graph's own argmax at λ[0]; every row must match the reference within TOL at every
 * position and step. The reference is causal, so one forward pass over the final sequence gives every step's row.
 */
async function expectMatchesReference(g: TestGraph, ref: RefLogits, lambdas: number[], steps: number): Promise<void> {
  const V = g.vocab;
  const prompts = [randomTokens(19, V), randomTokens(7, V), randomTokens(23, V)];
  const pre = await prefill(
    g,
    prompts.map((tokens) => ({ tokens, lambdas })),
    true,
  );
  prompts.forEach((tokens, i) => {
    const at = ref(tokens);
    lambdas.forEach((lambda, k) => expect(relErr(pre.logits[i][k].subarray(0, tokens.length * V), at(lambda))).toBeLessThan(TOL));
  });
  const seqs = prompts.map((p) => [...p]);
  const rows: Float32Array[][][] = prompts.map(() => []); // [seq][step][λ]
  let last = prompts.map((p, i) => pre.logits[i][0].subarray((p.length - 1) * V, p.length * V));
  for (let step = 0; step < steps; step++) {
    const next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(last[i]), lambdas }]));
    pre.handles.forEach((h, i) => seqs[i].push(next.get(h.id)!.token));
    const out = await decode(g, next, pre.handles);
    out.forEach((o, i) => rows[i].push(o));
    last = out.map((o) => o[0]);
  }
  seqs.forEach((s, i) => {
    const at = ref(s);
    lambdas.forEach((lambda, k) => {
      const full = at(lambda);
      rows[i].forEach((o, step) => {
        const pos = prompts[i].length + step;
        expect(relErr(o[k], full.subarray(pos * V, (pos + 1) * V))).toBeLessThan(TOL);
      });
    });
  });
}

/** The reference of a single model or of an InRa/fusion pair: λ·aligned + (1 − λ)·reference. */
const single =
  (ref: ReferenceModel): RefLogits =>
  (t) => {
    const z = ref.forward(t).logits;
    return () => z;
  };
const pair =
  (aligned: (t: number[]) => Float64Array, reference: (t: number[]) => Float64Array): RefLogits =>
  (t) => {
    const a = aligned(t);
    const r = reference(t);
    return (lambda) => blend(a, r, lambda);
  };

/** The KV caches hold padded heads: the manifest says so, and the engine's buffers are sized from it. */
function expectPaddedCaches(g: TestGraph, headDims: number[]): void {
  expect(g.runner.manifest.kvGroups.map((k) => k.headDim)).toEqual(headDims.map((E) => attentionHeadSize({ headDim: E })));
  for (const E of headDims) expect(attentionHeadSize({ headDim: E }) % 16).toBe(0);
}

describe(`head sizes GroupQueryAttention refuses are padded and match the reference (seed ${seed})`, () => {
  const singles = [
    { name: 'e12', arch: 'qwen2', tie: false },
    { name: 'e20', arch: 'llama', tie: false },
    { name: 'e24', arch: 'llama', tie: true },
    { name: 'e6', arch: 'qwen2', tie: true },
  ] as const;

  it.each(singles)(
    'single, $arch, head size $name, tied=$tie: every position of a batch, then 8 cached decode steps',
    async ({ name, arch, tie }) => {
      const dir = tinyCheckpoint({ arch, tie, seed, shape: SHAPES[name] });
      const ref = new ReferenceModel(openCheckpoint(dir));
      const g = await openGraph('single', { model: dir });
      expectPaddedCaches(g, [SHAPES[name].headDim]);
      await expectMatchesReference(g, single(ref), [1], 8);
    },
  );

  it.each(['inra', 'naive-inra'] as const)(
    '%s, qwen2, head size 12, two adapter layers: λ ∈ {−0.5, 0, 0.3, 1, 1.7}, prefill and 4 decode steps',
    async (mode: GraphMode) => {
      const base = tinyCheckpoint({ arch: 'qwen2', seed, shape: { ...SHAPES.e12, numLayers: 3 } });
      const trained = join(tempDir(), 'trained');
      syntheticInra(base, trained, seed + 1, 0.05, 2);
      const ref = new ReferenceModel(openCheckpoint(trained));
      const g = await openGraph(mode, { model: trained });
      expectPaddedCaches(g, [12, 12]);
      await expectMatchesReference(
        g,
        pair(
          (t) => ref.forward(t).logits,
          (t) => ref.forward(t, 2).logits,
        ),
        [-0.5, 0, 0.3, 1, 1.7],
        4,
      );
    },
  );

  it('fusion of a head-size-20 llama and a head-size-16 llama (each KV group its own head size): λ ∈ {−0.5, 0.5, 1, 1.5}', async () => {
    const a = tinyCheckpoint({ arch: 'llama', seed: seed + 3, shape: SHAPES.e20 });
    const r = tinyCheckpoint({ arch: 'llama', seed });
    const refA = new ReferenceModel(openCheckpoint(a));
    const refR = new ReferenceModel(openCheckpoint(r));
    const g = await openGraph('fusion', { aligned: a, reference: r });
    expectPaddedCaches(g, [20, 16]);
    expect(g.runner.manifest.kvGroups[1].headDim).toBe(16); // a head size GQA takes is left as it is
    await expectMatchesReference(
      g,
      pair(
        (t) => refA.forward(t).logits,
        (t) => refR.forward(t).logits,
      ),
      [-0.5, 0.5, 1, 1.5],
      4,
    );
  });

  it('decode-loop graph (inra, head size 12): 8 greedy steps in one run give the reference argmax at every step', async () => {
    const base = tinyCheckpoint({ arch: 'qwen2', seed, shape: SHAPES.e12 });
    const trained = join(tempDir(), 'trained');
    syntheticInra(base, trained, seed + 2, 0.08);
    const ref = new ReferenceModel(openCheckpoint(trained));
    const g = await openGraph('inra', { model: trained }, 128, true);
    const V = g.vocab;
    const lambdas = [0, 0.5, 1.5];
    const prompts = [randomTokens(9, V), randomTokens(4, V), randomTokens(13, V)];
    const pre = await prefill(
      g,
      prompts.map((tokens, i) => ({ tokens, lambdas: [lambdas[i]] })),
    );
    const next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(pre.logits[i][0]), lambdas: [lambdas[i]] }]));
    const plan = g.rows.decodePlan(next);
    const tokens = await g.runner.loop(plan, 8);
    plan.handles.forEach((h, b) => {
      const i = pre.handles.indexOf(h);
      expectGreedy(
        [...prompts[i], next.get(h.id)!.token],
        tokens.map((t) => t[b]),
        V,
        (ids) => blend(ref.forward(ids).logits, ref.forward(ids, 1).logits, lambdas[i]),
      );
    });
  });
});

/**
 * A greedy generation against the reference on the generated sequence (one causal forward pass gives the reference
 * at every prefix): a token may differ from the reference argmax only on a tie within float32 noise (a gap below
 * TOL of the largest logit).
 */
function expectGreedy(prompt: number[], generated: number[], V: number, logits: (ids: number[]) => Float64Array): void {
  const all = logits([...prompt, ...generated]); // [T, V]
  generated.forEach((tok, k) => {
    const z = all.subarray((prompt.length - 1 + k) * V, (prompt.length + k) * V);
    let best = 0;
    let scale = 0;
    for (let i = 0; i < z.length; i++) {
      if (z[i] > z[best]) best = i;
      scale = Math.max(scale, Math.abs(z[i]));
    }
    if (tok !== best) expect(z[best] - z[tok]).toBeLessThan(TOL * scale);
  });
}

describe(`the engine serves a head-size-12 checkpoint (seed ${seed})`, () => {
  it.each([0, 4])(
    'InRa, 24 greedy tokens at λ ∈ {−0.5, 0, 0.5, 1, 1.5} in one batch equal the reference argmax (decode-loop steps %i)',
    async (decodeLoopSteps) => {
      const base = join(tempDir(), 'model');
      initModel(base, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32', overrides: SHAPES.e12 });
      const dir = join(tempDir(), 'inra');
      syntheticInra(base, dir, seed + 1, 0.08);
      const ref = new ReferenceModel(openCheckpoint(dir));
      const engine = await startEngine({ mode: 'inra', model: dir }, { decodeLoopSteps });
      try {
        const V = engine.info.vocabSize;
        const lambdas = [-0.5, 0, 0.5, 1, 1.5];
        const prompts = lambdas.map((_, i) => randomTokens(5 + 3 * i, V));
        const runs = await Promise.all(lambdas.map((l, i) => collect(engine.generate(job(prompts[i], l, 24)))));
        runs.forEach((r, i) => {
          expect(r.finish).toBe('length');
          expect(r.tokens).toHaveLength(24);
          expectGreedy(prompts[i], r.tokens, V, (ids) => blend(ref.forward(ids).logits, ref.forward(ids, 1).logits, lambdas[i]));
        });
      } finally {
        await engine.shutdown();
      }
    },
  );
});
