import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { argmax, decode, openGraph, prefill, randomTokens, type TestGraph } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';

afterAll(cleanupTempDirs);
const seed = testSeed();

/** Prefills, then decodes `steps` greedy tokens either one run per step or all in one decode-loop run. */
async function greedy(g: TestGraph, prompts: number[][], lambdas: number[], steps: number, inOneRun: boolean) {
  const pre = await prefill(
    g,
    prompts.map((tokens, i) => ({ tokens, lambdas: [lambdas[i]] })),
  );
  let next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(pre.logits[i][0]), lambdas: [lambdas[i]] }]));
  const out: number[][] = pre.handles.map((h) => [next.get(h.id)!.token]);
  if (inOneRun) {
    const plan = g.rows.decodePlan(next);
    const tokens = await g.runner.loop(plan, steps);
    plan.handles.forEach((h, b) => {
      h.length += steps;
      out[pre.handles.indexOf(h)].push(...tokens.map((t) => t[b]));
    });
  } else {
    for (let s = 0; s < steps; s++) {
      const logits = await decode(g, next, pre.handles);
      next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(logits[i][0]), lambdas: [lambdas[i]] }]));
      pre.handles.forEach((h, i) => out[i].push(next.get(h.id)!.token));
    }
  }
  // one more ordinary step from where both paths ended shows the caches hold the same tokens
  const after = await decode(
    g,
    new Map(pre.handles.map((h, i) => [h.id, { token: out[i].at(-1)!, lambdas: [lambdas[i]] }])),
    pre.handles,
  );
  return { tokens: out, after: after.map((a) => a[0]) };
}

describe(`decode-loop graphs: M greedy steps in one run (seed ${seed})`, () => {
  for (const mode of ['inra', 'fusion'] as const) {
    it(`${mode}: 8 steps in one run give the tokens and caches of 8 single steps`, async () => {
      const base = tinyCheckpoint({ arch: 'qwen2', seed });
      let ckpts: { model?: string; aligned?: string; reference?: string };
      if (mode === 'inra') {
        const t = join(tempDir(), 't');
        syntheticInra(base, t, seed, 0.08);
        ckpts = { model: t };
      } else {
        ckpts = { aligned: tinyCheckpoint({ arch: 'qwen2', seed: seed + 9 }), reference: base };
      }
      const stepwise = await openGraph(mode, ckpts, 128);
      const looped = await openGraph(mode, ckpts, 128, true);
      const V = stepwise.vocab;
      const prompts = [randomTokens(9, V), randomTokens(4, V), randomTokens(13, V), randomTokens(6, V)];
      const lambdas = [0, 0.5, 1, 1.5];
      const a = await greedy(stepwise, prompts, lambdas, 8, false);
      const b = await greedy(looped, prompts, lambdas, 8, true);
      expect(b.tokens).toEqual(a.tokens);
      b.after.forEach((row, i) => expect(relErr(row, a.after[i])).toBeLessThan(1e-5));
    });
  }
});
