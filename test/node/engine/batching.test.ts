import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { collect, job, startEngine, tinyInra } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let engine: Engine;

beforeAll(async () => {
  engine = await startEngine({ mode: 'inra', model: tinyInra(seed) });
});
afterAll(async () => {
  await engine?.shutdown();
  cleanupTempDirs();
});

describe(`continuous batching (seed ${seed})`, () => {
  it('8 concurrent requests with different λ, prompts, sampling and arrival times each give exactly what they give alone', async () => {
    const V = engine.info.vocabSize;
    const variants: { lambda: number; len: number; params: Partial<SamplingParams>; max: number }[] = [
      { lambda: 0, len: 3, params: {}, max: 20 },
      { lambda: 1, len: 17, params: { temperature: 0.8, seed: 11 }, max: 24 },
      { lambda: 0.5, len: 9, params: { temperature: 1.2, top_p: 0.9, seed: 12 }, max: 16 },
      { lambda: -0.5, len: 30, params: { temperature: 0.7, top_k: 20, seed: 13 }, max: 28 },
      { lambda: 1.5, len: 5, params: {}, max: 12 },
      { lambda: 0.25, len: 12, params: { temperature: 1, min_p: 0.05, seed: 14, presence_penalty: 0.5 }, max: 22 },
      { lambda: 2, len: 7, params: { temperature: 0.9, repetition_penalty: 1.3, seed: 15 }, max: 18 },
      { lambda: 0.75, len: 21, params: { frequency_penalty: 0.4 }, max: 26 },
    ];
    const jobs = variants.map((v) => job(randomTokens(v.len, V), v.lambda, v.max, v.params));
    const alone = [];
    for (const j of jobs) alone.push((await collect(engine.generate(j))).tokens);

    let widest = 0;
    engine.onSteps = (_ms, s) => (widest = Math.max(widest, s.lastBatchSize));
    // together: each one arrives after the previous has produced a few tokens, so prefills join a running batch
    const together: Promise<number[]>[] = [];
    for (const [i, j] of jobs.entries()) {
      let started!: () => void;
      const firstTokens = new Promise<void>((r) => (started = r));
      together.push(collect(engine.generate(j), (_ev, n) => n === 2 + (i % 3) && started()).then((c) => c.tokens));
      await firstTokens;
    }
    const results = await Promise.all(together);
    engine.onSteps = null;
    expect(results).toEqual(alone);
    expect(widest).toBeGreaterThanOrEqual(4); // they really shared decode steps
    const stats = await engine.refreshStats();
    expect(stats.running).toBe(0);
    expect(stats.rows).toBe(0);
    expect(stats.kvTokensUsed).toBe(0);
  });

  it('a cancelled sequence leaves the batch at the next step and frees its KV rows', async () => {
    const V = engine.info.vocabSize;
    const long = engine.generate(job(randomTokens(10, V), 0.5, 400));
    const other = engine.generate(job(randomTokens(6, V), 0.3, 400));
    const it = long.events[Symbol.asyncIterator]();
    const otherIt = other.events[Symbol.asyncIterator]();
    // both have produced tokens, so both are in the running batch (the engine may see the second job only after a
    // few steps of the first)
    expect((await otherIt.next()).done).toBe(false);
    for (let n = 0; n < 5; n++) expect((await it.next()).done).toBe(false);
    const before = await engine.refreshStats();
    expect(before.running).toBe(2);
    long.cancel();
    let last;
    for (let r = await it.next(); !r.done; r = await it.next()) last = r.value;
    expect(last?.finish).toBe('cancelled');
    const after = await engine.refreshStats();
    // InRa at λ = 0.5: one aligned row (adapter + layers) and one reference row, three KV rows in all
    expect(before.rows - after.rows).toBe(3);
    // the other sequence (now alone in after.rows) keeps decoding meanwhile: one position per step in each of its rows
    expect(after.kvTokensUsed - after.rows * (after.decodeSteps - before.decodeSteps)).toBeLessThan(before.kvTokensUsed);
    expect(after.running).toBe(1);
    other.cancel();
    let otherLast;
    for (let r = await otherIt.next(); !r.done; r = await otherIt.next()) otherLast = r.value;
    expect(otherLast?.finish).toBe('cancelled');
    expect((await engine.refreshStats()).rows).toBe(0);
  });

  it('requests over the KV budget wait in the queue and all complete', async () => {
    const small = await startEngine({ mode: 'inra', model: tinyInra(seed + 2) }, { maxKvTokens: 2 * 2 * 40, maxBatch: 8 });
    try {
      const V = small.info.vocabSize;
      // each reserves (8 + 32) tokens × 2 branch rows = 80: two fit at once
      const runs = Array.from({ length: 6 }, (_, i) => collect(small.generate(job(randomTokens(8, V), 0.5 + i / 10, 32))));
      let maxQueued = 0;
      let maxRunning = 0;
      small.onSteps = (_ms, s) => {
        maxQueued = Math.max(maxQueued, s.queued);
        maxRunning = Math.max(maxRunning, s.running);
      };
      const done = await Promise.all(runs);
      expect(done.map((d) => d.finish)).toEqual(Array(6).fill('length'));
      expect(done.every((d) => d.tokens.length === 32)).toBe(true);
      expect(maxRunning).toBe(2);
      expect(maxQueued).toBeGreaterThan(0);
    } finally {
      await small.shutdown();
    }
  });
});
