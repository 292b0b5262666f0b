import { afterAll, describe, expect, it } from 'vitest';
import { collect, job, startEngine, tinyInra } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);
const seed = testSeed();

describe(`engine with decode-loop runs (M greedy steps per run, seed ${seed})`, () => {
  it('greedy batches give the same tokens as step-by-step decoding; sampled batches fall back to single steps', async () => {
    const dir = tinyInra(seed);
    const plain = await startEngine({ mode: 'inra', model: dir }, { decodeLoopSteps: 0 });
    const looped = await startEngine({ mode: 'inra', model: dir }, { decodeLoopSteps: 8 });
    try {
      const V = plain.info.vocabSize;
      const jobs = [0, 0.5, 1, 1.5].map((l, i) => job(randomTokens(5 + 4 * i, V), l, 21 + i));
      const a = await Promise.all(jobs.map((j) => collect(plain.generate(j))));
      const before = (await looped.refreshStats()).forwardPasses;
      const b = await Promise.all(jobs.map((j) => collect(looped.generate(j))));
      expect(b.map((x) => x.tokens)).toEqual(a.map((x) => x.tokens));
      expect(b.map((x) => x.finish)).toEqual(a.map((x) => x.finish));
      const runs = await looped.refreshStats();
      // one prefill, then runs of up to 8 steps: far fewer runs than tokens
      expect(runs.decodeSteps).toBeGreaterThanOrEqual(20);
      expect(runs.forwardPasses - before).toBeGreaterThan(20);
      const sampled = job(randomTokens(6, V), 0.5, 12, { temperature: 0.9, seed: 4 });
      const s1 = await collect(plain.generate(sampled));
      const s2 = await collect(looped.generate(sampled));
      expect(s2.tokens).toEqual(s1.tokens);
    } finally {
      await Promise.all([plain.shutdown(), looped.shutdown()]);
    }
  });

  it('a stop string reached inside a run ends the sequence there; later tokens of the run are dropped', async () => {
    const text = '世界🙂ж✓ŋ';
    const { dir, cycle } = bigramModel(text);
    const engine = await startEngine({ mode: 'single', model: dir }, { decodeLoopSteps: 16 });
    try {
      const out = await collect(engine.generate(job([cycle.at(-1)!], 1, 64, {}, { stop: ['✓'] })));
      expect(out.finish).toBe('stop');
      expect(out.chunks.join('')).toBe('世界🙂ж');
      expect((await engine.refreshStats()).rows).toBe(0);
    } finally {
      await engine.shutdown();
    }
  });
});
