import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { argmax, decode, oneBranchCheckpoints, openGraph, prefill, randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';

afterAll(cleanupTempDirs);

const seed = testSeed();

describe(`fusion graphs (seed ${seed})`, () => {
  it('fusing a model with itself gives that model at every λ (within 1e-5)', async () => {
    const m = tinyCheckpoint({ arch: 'qwen2', seed });
    const single = await openGraph('single', { model: m });
    const fused = await openGraph('fusion', { aligned: m, reference: m });
    const prompts = [randomTokens(16, single.vocab), randomTokens(7, single.vocab)];
    const lambdas = [-1, 0, 0.5, 1, 3];
    const want = await prefill(
      single,
      prompts.map((tokens) => ({ tokens, lambdas: [1] })),
      true,
    );
    const got = await prefill(
      fused,
      prompts.map((tokens) => ({ tokens, lambdas })),
      true,
    );
    prompts.forEach((t, i) =>
      lambdas.forEach((_, k) => {
        const n = t.length * single.vocab;
        expect(relErr(got.logits[i][k].subarray(0, n), want.logits[i][0].subarray(0, n))).toBeLessThan(1e-5);
      }),
    );
  });

  it('fusing two different models gives the λ-blend of their reference logits, rows of different λ and length in one batch, through decode', async () => {
    const a = tinyCheckpoint({ arch: 'llama', seed, tie: true });
    const r = tinyCheckpoint({ arch: 'llama', seed: seed + 7, tie: true });
    const refA = new ReferenceModel(openCheckpoint(a));
    const refR = new ReferenceModel(openCheckpoint(r));
    const g = await openGraph('fusion', { aligned: a, reference: r });
    const V = g.vocab;
    const rows = [
      { lambda: 0, tokens: randomTokens(12, V) },
      { lambda: 0.25, tokens: randomTokens(19, V) },
      { lambda: 1, tokens: randomTokens(4, V) },
      { lambda: 2, tokens: randomTokens(16, V) },
    ];
    const check = (tokens: number[], lambda: number, got: Float32Array) => {
      const za = refA.forward(tokens).logits.subarray((tokens.length - 1) * V);
      const zr = refR.forward(tokens).logits.subarray((tokens.length - 1) * V);
      expect(relErr(got, blend(za, zr, lambda))).toBeLessThan(1e-4);
    };
    const pre = await prefill(
      g,
      rows.map((x) => ({ tokens: x.tokens, lambdas: [x.lambda] })),
    );
    rows.forEach((x, i) => check(x.tokens, x.lambda, pre.logits[i][0]));
    const seqs = rows.map((x) => [...x.tokens]);
    let last = pre.logits.map((l) => l[0]);
    for (let step = 0; step < 3; step++) {
      const next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(last[i]), lambdas: [rows[i].lambda] }]));
      pre.handles.forEach((h, i) => seqs[i].push(next.get(h.id)!.token));
      last = (await decode(g, next, pre.handles)).map((o) => o[0]);
      rows.forEach((x, i) => check(seqs[i], x.lambda, last[i]));
    }
  });

  it('a step whose rows all sit at λ = 0 runs no aligned model at all (and vice versa)', async () => {
    const a = tinyCheckpoint({ arch: 'qwen2', seed });
    const r = tinyCheckpoint({ arch: 'qwen2', seed: seed + 3 });
    const refR = new ReferenceModel(openCheckpoint(r));
    const refA = new ReferenceModel(openCheckpoint(a));
    const g = await openGraph('fusion', { aligned: a, reference: r });
    const tokens = randomTokens(10, g.vocab);
    const onlyRef = await prefill(g, [{ tokens, lambdas: [0] }]);
    expect(g.runner.caches[0].size).toBe(0);
    expect(relErr(onlyRef.logits[0][0], refR.forward(tokens).logits.subarray(9 * g.vocab))).toBeLessThan(1e-4);
    const onlyAligned = await prefill(g, [{ tokens, lambdas: [1] }]);
    expect(relErr(onlyAligned.logits[0][0], refA.forward(tokens).logits.subarray(9 * g.vocab))).toBeLessThan(1e-4);
  });
});

describe(`one-branch rows (seed ${seed})`, () => {
  // Same graph, same row, computed once alone and once with its other branch in the batch: the λ ∈ {0, 1} blend is
  // 1·z + 0·z' which is z exactly; only the batch composition differs, so the logits must agree to float32 rounding.
  const TOL = 1e-6;
  for (const mode of ['inra', 'fusion'] as const) {
    it(`${mode}: a row with λ = 0 or 1 gives the same logits whether or not its other branch is computed (within ${TOL})`, async () => {
      const base = tinyCheckpoint({ arch: 'qwen2', seed });
      const ckpts = oneBranchCheckpoints(mode, base, seed);
      const g = await openGraph(mode, ckpts);
      const tokens = randomTokens(14, g.vocab);
      for (const lambda of [0, 1]) {
        const alone = await prefill(g, [{ tokens, lambdas: [lambda] }]);
        const both = await prefill(g, [{ tokens, lambdas: [lambda], bothBranches: true }]);
        expect(relErr(alone.logits[0][0], both.logits[0][0])).toBeLessThan(TOL);
      }
    });
  }
});

describe(`naive InRa layout (the benchmark baseline, seed ${seed})`, () => {
  it('computes the same blends as the fused InRa graph (within 1e-5)', async () => {
    const base = tinyCheckpoint({ arch: 'llama', seed });
    const trained = join(tempDir(), 't');
    syntheticInra(base, trained, seed, 0.05);
    const fused = await openGraph('inra', { model: trained });
    const naive = await openGraph('naive-inra', { model: trained });
    const tokens = randomTokens(15, fused.vocab);
    const lambdas = [-0.5, 0, 0.6, 1, 1.5];
    const a = await prefill(fused, [{ tokens, lambdas }]);
    const b = await prefill(naive, [{ tokens, lambdas }]);
    lambdas.forEach((_, k) => expect(relErr(b.logits[0][k], a.logits[0][k])).toBeLessThan(1e-5));
  });
});
