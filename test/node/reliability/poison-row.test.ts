/**
 * Issue 13 item 1, through the real engine: one request whose sampling parameters make its logits overflow
 * (`repetition_penalty: 1e-300` divides a positive logit by 1e-300 → +∞, with `min_p` or `top_p` truncation) runs
 * in one batch with ten ordinary requests. On the old code the draw returned no token, the next run threw
 * ("Cannot convert undefined to a BigInt") and the scheduler ended every sequence of the batch with `engine_error`.
 * Now the ordinary requests finish exactly as they do alone, and the poison row either finishes or ends alone.
 * The engine takes the parameters unvalidated here (the HTTP layer refuses them; see poison-request-http.test.ts),
 * so this checks the sampler and the scheduler, not the validation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { collect, job, startEngine, tinyModel, type Collected } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({ mode: 'single', model: tinyModel(seed) });
}, 120_000);
afterAll(async () => {
  await engine?.shutdown();
  cleanupTempDirs();
});

/** Ten ordinary requests: greedy and sampled, with and without truncation and penalties. */
function ordinary(V: number): ReturnType<typeof job>[] {
  const params: Partial<SamplingParams>[] = [
    {},
    { temperature: 0.8, seed: 1 },
    { temperature: 1.2, top_p: 0.9, seed: 2 },
    { temperature: 0.7, top_k: 20, seed: 3 },
    { temperature: 1, min_p: 0.05, seed: 4, presence_penalty: 0.5 },
    { temperature: 0.9, repetition_penalty: 1.3, seed: 5 },
    { frequency_penalty: 0.4 },
    { temperature: 1, seed: 6, logprobs: true, top_logprobs: 3 },
    { temperature: 0.5, top_p: 0.5, min_p: 0.1, seed: 7 },
    { temperature: 1.5, top_k: 5, top_p: 0.8, seed: 8 },
  ];
  return params.map((p, i) => job(randomTokens(4 + i, V), 1, 48, p));
}

const POISONS: [string, Partial<SamplingParams>][] = [
  ['min_p 0.9', { temperature: 1, min_p: 0.9, repetition_penalty: 1e-300, seed: 9 }],
  ['top_p 0.5', { temperature: 1, top_p: 0.5, repetition_penalty: 1e-300, seed: 9 }],
  ['top_k 3 and min_p 0.9', { temperature: 1, top_k: 3, min_p: 0.9, repetition_penalty: 1e-300, seed: 9 }],
  ['no truncation, logprobs', { temperature: 1, repetition_penalty: 1e-300, seed: 9, logprobs: true, top_logprobs: 2 }],
];

describe(`one poison request in a batch (seed ${seed})`, () => {
  for (const [name, poison] of POISONS) {
    it(`repetition_penalty 1e-300 with ${name}: the ten others finish as alone, the poison ends alone`, async () => {
      const V = engine.info.vocabSize;
      const jobs = ordinary(V);
      const alone: Collected[] = [];
      for (const j of jobs) alone.push(await collect(engine.generate(j)));

      let widest = 0;
      engine.onSteps = (_ms, s) => (widest = Math.max(widest, s.lastBatchSize));
      // the ordinary ones are all decoding when the poison joins them
      let firsts = 0;
      let allStarted!: () => void;
      const started = new Promise<void>((r) => (allStarted = r));
      let finished = 0;
      const together = jobs.map((j) =>
        collect(engine.generate(j), (ev, n) => {
          if (n === 1 && ++firsts === jobs.length) allStarted();
          if (ev.finish) finished++;
        }),
      );
      await started;
      // every prompt token is "seen": with 48 random ones some has a positive logit, which the penalty sends to +∞
      let finishedWhenPoisonStarted = -1;
      const bad = collect(
        engine.generate(job(randomTokens(48, V), 1, 24, poison)),
        (_ev, n) => n === 1 && (finishedWhenPoisonStarted = finished),
      );
      const results = await Promise.all(together);
      const poisoned = await bad;
      engine.onSteps = null;

      expect(finishedWhenPoisonStarted).toBe(0); // the poison really was in the batch of all ten
      expect(widest).toBeGreaterThanOrEqual(10);
      expect(results.map((r) => r.finish)).toEqual(Array(10).fill('length'));
      expect(results.map((r) => r.tokens)).toEqual(alone.map((r) => r.tokens));
      // the poison row: it either generated valid tokens or ended on its own with an error naming why
      if (poisoned.finish === 'error') {
        expect(poisoned.events.at(-1)?.error?.code).toBeTruthy();
      } else {
        expect(poisoned.finish).toBe('length');
        expect(poisoned.tokens).toHaveLength(24);
        for (const t of poisoned.tokens) expect(Number.isInteger(t) && t >= 0 && t < V).toBe(true);
        for (const t of poisoned.events.flatMap((ev) => ev.tokens)) {
          if (t.logprob !== undefined) expect(Number.isFinite(t.logprob)).toBe(true);
        }
      }
      // and the engine serves the next request as before
      expect((await collect(engine.generate(jobs[1]))).tokens).toEqual(alone[1].tokens);
      const stats = await engine.refreshStats();
      expect([stats.running, stats.rows, stats.kvTokensUsed, stats.kvTokensReserved]).toEqual([0, 0, 0, 0]);
    });
  }
});

describe('an engine observer that throws', () => {
  it('does not keep the events of a step from their requests', { timeout: 20_000 }, async () => {
    const V = engine.info.vocabSize;
    const j = job(randomTokens(6, V), 1, 12);
    const alone = await collect(engine.generate(j));
    engine.onSteps = () => {
      throw new Error('a metrics observer fault');
    };
    try {
      const out = await collect(engine.generate(j));
      expect(out.tokens).toEqual(alone.tokens);
      expect(out.finish).toBe('length');
    } finally {
      engine.onSteps = null;
    }
  });
});
