/** The engine on a model of several named adapters: mixes per sequence in one batch, logits per adapter, usage. */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { addAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { perturbCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';
import { ReferenceModel } from '../../../gpu-backend/src/reference/forward.ts';
import { collect, job, startEngine, tinyModel } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

/** log-softmax of a logits row (float64). */
function logSoftmax(z: Float64Array): Float64Array {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return z.map((v) => v - lse);
}

describe('engine with several named adapters', () => {
  const seed = testSeed();

  it(`sequences of different mixes decode together as they do alone; /logits blends and per-adapter branches match the float64 reference (1e-4); usage per adapter (seed ${seed})`, async () => {
    const work = tempDir();
    addAdapter(tinyModel(seed), join(work, '1'), 'concise');
    addAdapter(join(work, '1'), join(work, '2'), 'safe');
    addAdapter(join(work, '2'), join(work, '3'), 'style');
    const model = join(work, 'trained');
    perturbCheckpoint(join(work, '3'), model, (n) => /^model\.layers\.[012]\./.test(n), seed + 1, 0.08);
    const engine = await startEngine({ mode: 'inra', model });
    try {
      expect(engine.info.adapters).toEqual(['concise', 'safe', 'style']);
      const V = engine.info.vocabSize;
      const mixes: Record<string, number>[] = [
        { concise: 0.7 },
        { safe: 1 },
        { concise: 0.5, style: 1.5 },
        {},
        { safe: -0.5, style: 0.3 },
      ];
      const prompts = mixes.map((_, i) => randomTokens(4 + 3 * i, V));
      const run = (i: number) => collect(engine.generate(job(prompts[i], 0.5, 6, {}, { mix: mixes[i] })));
      const together = await Promise.all(mixes.map((_, i) => run(i)));
      for (const [i, got] of together.entries()) expect(got.tokens, `mix ${i} alone`).toEqual((await run(i)).tokens);
      expect(new Set(together.map((t) => t.tokens.join(','))).size).toBeGreaterThan(1);
      const usage = together[2].events.at(-1)!.usage!;
      expect(usage.adapters).toEqual({
        concise: { prompt_tokens: prompts[2].length, completion_tokens: 6 },
        style: { prompt_tokens: prompts[2].length, completion_tokens: 6 },
      });
      expect(together[3].events.at(-1)!.usage!.adapters).toEqual({});
      expect(together[1].events.at(-1)!.usage!.reference.completion_tokens).toBe(0);

      const ids = randomTokens(9, V);
      const res = await engine.logits({
        inputIds: ids,
        lambdas: [0.4],
        mixes: [{ concise: 0.7, safe: 0.5 }],
        positions: 'last',
        topLogprobs: 5,
        includeBranches: true,
      });
      const ref = new ReferenceModel(openCheckpoint(model));
      const last = (z: Float64Array) => logSoftmax(z.subarray((ids.length - 1) * V));
      const expectTop = (got: { token: number; logprob: number }[], want: Float64Array, what: string) => {
        const best = [...want.keys()].sort((a, b) => want[b] - want[a]).slice(0, 5);
        expect(
          got.map((t) => t.token),
          what,
        ).toEqual(best);
        for (const t of got) expect(Math.abs(t.logprob - want[t.token]), what).toBeLessThan(1e-4);
      };
      expect(res.blends.map((b) => b.mix ?? null)).toEqual([null, { concise: 0.7, safe: 0.5 }]);
      expectTop(res.blends[0].top[0], last(ref.mixLogits(ids, { concise: 0.4 })), 'λ 0.4 (first adapter)');
      expectTop(res.blends[1].top[0], last(ref.mixLogits(ids, { concise: 0.7, safe: 0.5 })), 'mix');
      expectTop(res.branches!.reference[0], last(ref.forwardAdapter(ids, null).logits), 'reference');
      expect(Object.keys(res.branches!.adapters!)).toEqual(['concise', 'safe', 'style']);
      for (const name of ['concise', 'safe', 'style'])
        expectTop(res.branches!.adapters![name][0], last(ref.forwardAdapter(ids, name).logits), name);

      // a mix naming an adapter the model does not have is refused alone
      const bad = await collect(engine.generate(job(prompts[0], 0.5, 2, {}, { mix: { brief: 1 } }))).catch((e: Error) => e);
      expect(String(bad)).toMatch(/no adapter "brief"/);
    } finally {
      await engine.shutdown();
    }
  }, 60_000);
});
