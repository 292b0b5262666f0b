/**
 * Chunked prefill (issue 14.5) at the graph level: prompts written into the resident KV cache a chunk at a time,
 * several sequences' chunks in one run with different pasts and chunk lengths (the shorter rows padded), give at
 * each chunk's last position, and then through decode steps, the float64 reference's logits of the same prefix.
 * Tolerance: max-abs error relative to the largest reference logit, 1e-4 (the graph tests' tolerance).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { branchesFor, type RowHandle } from '../../../gpu-backend/src/engine/rows.ts';
import { decode, openGraph, randomTokens, type TestGraph } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

const TOL = 1e-4;
const seed = testSeed();

afterAll(cleanupTempDirs);

type Expected = (tokens: number[], lambda: number) => Float64Array;

/** The three graph modes, each with the float64 reference of its last-position logits. */
async function setup(mode: 'single' | 'inra' | 'fusion'): Promise<{ g: TestGraph; expected: Expected }> {
  const last = (z: Float64Array, n: number, V: number) => z.subarray((n - 1) * V, n * V);
  if (mode === 'single') {
    const dir = tinyCheckpoint({ arch: 'qwen2', seed });
    const ref = new ReferenceModel(openCheckpoint(dir));
    const g = await openGraph('single', { model: dir });
    return { g, expected: (t) => last(ref.forward(t).logits, t.length, g.vocab) };
  }
  if (mode === 'inra') {
    const base = tinyCheckpoint({ arch: 'qwen2', seed, shape: { numLayers: 3 } });
    const trained = join(tempDir(), 'trained');
    syntheticInra(base, trained, seed + 1, 0.05, 2);
    const ref = new ReferenceModel(openCheckpoint(trained));
    const g = await openGraph('inra', { model: trained });
    const V = g.vocab;
    return {
      g,
      expected: (t, lambda) =>
        blend(last(ref.forward(t).logits, t.length, V), last(ref.forward(t, 2).logits, t.length, V), lambda),
    };
  }
  const a = tinyCheckpoint({ arch: 'llama', seed, tie: true });
  const r = tinyCheckpoint({ arch: 'llama', seed: seed + 7, tie: true });
  const refA = new ReferenceModel(openCheckpoint(a));
  const refR = new ReferenceModel(openCheckpoint(r));
  const g = await openGraph('fusion', { aligned: a, reference: r });
  const V = g.vocab;
  return {
    g,
    expected: (t, lambda) => blend(last(refA.forward(t).logits, t.length, V), last(refR.forward(t).logits, t.length, V), lambda),
  };
}

describe.each(['single', 'inra', 'fusion'] as const)(`chunked prefill, %s graph (seed ${seed})`, (mode) => {
  // 1-token chunks, odd boundaries (5 through 23/16/9), 16 divides the 16-token prompt exactly, 64: unchunked
  it.each([1, 5, 16, 64])(
    'chunks of %i tokens, sequences joining one round apart beside a sequence that leaves, then decode steps: the reference',
    async (C) => {
      const { g, expected } = await setup(mode);
      const V = g.vocab;
      const lambdas = mode === 'single' ? [1, 1, 1, 1] : [0.4, 0, 1, 1.7];
      const prompts = [randomTokens(23, V), randomTokens(16, V), randomTokens(9, V), randomTokens(1, V)];
      const seqs = prompts.map((tokens, i) => ({ tokens, lambda: lambdas[i], done: 0, handle: null as RowHandle | null }));
      // a sequence in front of them that leaves after the first round: the last rows move into its slots
      const leaver = g.rows.add(branchesFor(g.runner.manifest.mode, [0.5]));
      const leaverPlan = g.rows.prefillPlan([{ handle: leaver, tokens: randomTokens(6, V), lambdas: [0.5] }]);
      await g.runner.step(leaverPlan);
      g.rows.commit(leaverPlan);
      let checked = 0;
      for (let round = 0; ; round++) {
        if (round === 1) g.rows.remove(leaver);
        if (round < seqs.length) seqs[round].handle = g.rows.add(branchesFor(g.runner.manifest.mode, [seqs[round].lambda]));
        const fresh = seqs.filter((s) => s.handle && s.done === 0);
        const started = seqs.filter((s) => s.done > 0 && s.done < s.tokens.length);
        if (fresh.length + started.length === 0 && round >= seqs.length) break;
        // first chunks (no past) batch as first prompts, at the sequence's λ
        if (fresh.length > 0) {
          g.rows.arrangeAtEnd(fresh.map((s) => s.handle!));
          const chunks = fresh.map((s) => s.tokens.slice(0, C));
          const plan = g.rows.prefillPlan(fresh.map((s, i) => ({ handle: s.handle!, tokens: chunks[i], lambdas: [s.lambda] })));
          const res = await g.runner.step(plan);
          g.rows.commit(plan);
          fresh.forEach((s, i) => {
            s.done = chunks[i].length;
            const got = res.logits.subarray(i * V, (i + 1) * V);
            expect(relErr(got, expected(s.tokens.slice(0, s.done), s.lambda))).toBeLessThan(TOL);
            checked++;
          });
        }
        // later chunks: one run per branch row, each projecting its own branch (λ 1: aligned, λ 0: reference)
        for (const s of started) {
          const chunk = s.tokens.slice(s.done, s.done + C);
          for (const plan of g.rows.chunkPlans(s.handle!, chunk)) {
            expect(plan.tokens.length).toBe(1);
            const res = await g.runner.step(plan);
            const prefix = s.tokens.slice(0, s.done + chunk.length);
            expect(relErr(res.logits, expected(prefix, plan.outputs[0].lambda))).toBeLessThan(TOL);
            checked++;
          }
          g.rows.commitChunk(s.handle!, chunk.length);
          s.done += chunk.length;
          expect(s.handle!.length).toBe(s.done);
        }
      }
      const rowsOf = (l: number) => (mode === 'single' || l === 0 || l === 1 ? 1 : 2);
      const laterChunks = (n: number) => Math.max(0, Math.ceil(n / C) - 1);
      expect(checked).toBe(prompts.reduce((n, p, i) => n + 1 + laterChunks(p.length) * rowsOf(lambdas[i]), 0));
      // every prompt in the cache: decode steps over all of them continue from the chunked cache
      const handles = seqs.map((s) => s.handle!);
      for (let step = 0; step < 3; step++) {
        const next = new Map(handles.map((h, i) => [h.id, { token: (7 * i + 3 * step + 1) % V, lambdas: [seqs[i].lambda] }]));
        handles.forEach((h, i) => seqs[i].tokens.push(next.get(h.id)!.token));
        const out = await decode(g, next, handles);
        seqs.forEach((s, i) => expect(relErr(out[i][0], expected(s.tokens, s.lambda))).toBeLessThan(TOL));
      }
      await g.runner.release();
    },
  );

  it('fill() writes the same cache as step() and brings nothing back to the host', async () => {
    const { g, expected } = await setup(mode);
    const V = g.vocab;
    const lambda = mode === 'single' ? 1 : 0.3;
    const tokens = randomTokens(19, V);
    const h = g.rows.add(branchesFor(g.runner.manifest.mode, [lambda]));
    const first = g.rows.prefillPlan([{ handle: h, tokens: tokens.slice(0, 6), lambdas: [lambda] }]);
    await g.runner.fill(first);
    g.rows.commit(first);
    const before = { ...g.runner.transferBytes };
    for (const at of [6, 13]) {
      const chunk = tokens.slice(at, at + 7);
      for (const plan of g.rows.chunkPlans(h, chunk)) await g.runner.fill(plan);
      g.rows.commitChunk(h, chunk.length);
    }
    expect(g.runner.transferBytes.fromDevice).toBe(before.fromDevice);
    const next = new Map([[h.id, { token: 5, lambdas: [lambda] }]]);
    const [out] = await decode(g, next, [h]);
    expect(relErr(out[0], expected([...tokens, 5], lambda))).toBeLessThan(TOL);
    await g.runner.release();
  });
});
