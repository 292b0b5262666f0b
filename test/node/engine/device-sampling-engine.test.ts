/**
 * Sampling inside the step graph (issue 14 item 3), through the engine on the CPU: the same tokens as the host
 * sampler for greedy and seeded sampled rows mixed in one batch, logprobs equal, and per step only the tokens cross.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { EngineStats, GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import type { SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { collect, job, startEngine, type Collected } from '../helpers/engine.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { poisonCheckpoint } from '../reliability/poison-checkpoint.ts';
import { graphCacheKey, GRAPH_FORMAT_VERSION } from '../../../gpu-backend/src/graph/build.ts';
import type { GraphSpec } from '../../../gpu-backend/src/graph/model-graph.ts';
import { createHash } from 'node:crypto';

const seed = testSeed();
// more tokens than the block's 1024 candidates, so that wide nuclei are left to the host (token −2)
const VOCAB = 2048;
let on: Engine;
let off: Engine;

beforeAll(async () => {
  const base = join(tempDir(), 'model');
  initModel(base, { arch: 'qwen2', preset: 'tiny', seed, dtype: 'F32', overrides: { vocabSize: VOCAB } });
  const model = join(tempDir(), 'inra');
  syntheticInra(base, model, seed + 1, 0.08);
  on = await startEngine({ mode: 'inra', model }, { deviceSampling: 'on' });
  off = await startEngine({ mode: 'inra', model }, { deviceSampling: 'off' });
}, 120_000);
afterAll(async () => {
  await on?.shutdown();
  await off?.shutdown();
  cleanupTempDirs();
});

/** A deterministic prompt per index. */
function prompt(i: number, len: number): number[] {
  return Array.from({ length: len }, (_, k) => (i * 131 + k * 977 + seed) % VOCAB);
}

/** Runs all jobs at once (they share prefill and decode steps) and returns what each produced. */
async function together(engine: Engine, jobs: Omit<GenerateJob, 'id'>[]): Promise<Collected[]> {
  return Promise.all(jobs.map((j) => collect(engine.generate(j))));
}

function logprobsOf(c: Collected) {
  return c.events.flatMap((ev) => ev.tokens.map((t) => ({ logprob: t.logprob, top: t.top })));
}

function bytesPerStep(a: EngineStats, b: EngineStats): number {
  const bytes =
    b.hostDeviceBytes.toDevice + b.hostDeviceBytes.fromDevice - a.hostDeviceBytes.toDevice - a.hostDeviceBytes.fromDevice;
  return bytes / (b.hostDeviceBytes.steps - a.hostDeviceBytes.steps);
}

const mixed: { lambda: number; params: Partial<SamplingParams> }[] = [
  { lambda: 0, params: {} },
  { lambda: 1, params: { temperature: 0.8, seed: 11 } },
  { lambda: 0.5, params: { temperature: 1.2, top_p: 0.9, seed: 12 } }, // nucleus wider than 1024: host rows
  { lambda: -0.5, params: { temperature: 0.7, top_k: 20, seed: 13 } },
  { lambda: 1.5, params: { logprobs: true, top_logprobs: 5 } },
  { lambda: 0.25, params: { temperature: 1, min_p: 0.05, seed: 14, logprobs: true } },
  { lambda: 2, params: { temperature: 0.3, top_k: 50, top_p: 0.8, min_p: 0.02, seed: 15, logprobs: true, top_logprobs: 3 } },
  { lambda: 0.75, params: { temperature: 2, top_p: 0.05, seed: 16 } }, // a narrow nucleus: on the device
  { lambda: 1, params: { temperature: 1, top_k: 1500, seed: 17 } }, // top_k past the candidates, no top_p: the device
  { lambda: 0.5, params: { temperature: 0.9, top_k: 1500, top_p: 0.99, seed: 18 } }, // past the candidates with top_p: host
  // a second wide nucleus: the host rows of a step are drawn in one round with the draw thread (engine/host-sampling.ts)
  { lambda: 1.25, params: { temperature: 1.1, top_p: 0.95, seed: 19 } },
];

describe(`device sampling through the engine (CPU, seed ${seed})`, () => {
  it('greedy and seeded sampled rows mixed in one batch: the same tokens and logprobs as the host sampler', async () => {
    const jobs = mixed.map((v, i) => job(prompt(i, 3 + ((i * 5) % 11)), v.lambda, 24, v.params, { stream: i % 3 }));
    const [a, b] = [await together(on, jobs), await together(off, jobs)];
    for (let i = 0; i < jobs.length; i++) {
      expect(a[i].finish, `job ${i}`).toBe('length');
      expect(a[i].tokens, `job ${i}`).toEqual(b[i].tokens);
      const [la, lb] = [logprobsOf(a[i]), logprobsOf(b[i])];
      la.forEach((x, k) => {
        if (lb[k].logprob === undefined) expect(x.logprob).toBeUndefined();
        else expect(Math.abs(x.logprob! - lb[k].logprob!), `job ${i} token ${k}`).toBeLessThan(1e-5);
        expect(x.top?.map((t) => t.token)).toEqual(lb[k].top?.map((t) => t.token));
        x.top?.forEach((t, j) => expect(Math.abs(t.logprob - lb[k].top![j].logprob)).toBeLessThan(1e-5));
      });
    }
    // the sampled rows really were sampled (not all greedy), and differ between seeds
    expect(new Set(a.slice(1, 4).map((c) => c.tokens.join()))).toHaveProperty('size', 3);
  }, 120_000);

  it('rows with logit_bias or penalties are sampled on the host, beside device rows, with the same tokens', async () => {
    const params: Partial<SamplingParams>[] = [
      { temperature: 0.9, seed: 21, logit_bias: { 5: 3, 7: -100 } },
      { temperature: 1, seed: 22, repetition_penalty: 1.4, presence_penalty: 0.5, frequency_penalty: 0.3 },
      { temperature: 0.6, top_k: 10, seed: 23 },
      {},
    ];
    const jobs = params.map((p, i) => job(prompt(40 + i, 6), 0.5 + i * 0.25, 16, p));
    const [a, b] = [await together(on, jobs), await together(off, jobs)];
    expect(a.map((c) => c.tokens)).toEqual(b.map((c) => c.tokens));
    // a row sampled alone on the device still matches once the host rows have finished
    const after = [job(prompt(50, 4), 1, 12, { temperature: 1.1, seed: 24 }, { stream: 2 })];
    expect((await together(on, after))[0].tokens).toEqual((await together(off, after))[0].tokens);
  }, 120_000);

  it('batch 32 without logprobs: at most 64 KiB cross per step (the host sampler path moves the logits)', async () => {
    const kinds: Partial<SamplingParams>[] = [
      {},
      { temperature: 0.8 },
      { temperature: 1, top_k: 40 },
      { temperature: 0.7, min_p: 0.1 },
      { temperature: 1.3, top_p: 0.05 },
    ];
    const jobs = Array.from({ length: 32 }, (_, i) =>
      job(prompt(100 + i, 5 + (i % 4)), (i % 5) * 0.5 - 0.5, 20, { ...kinds[i % kinds.length], seed: 300 + i }),
    );
    const measure = async (engine: Engine) => {
      const before = await engine.refreshStats();
      let widest = 0;
      engine.onSteps = (_ms, s) => (widest = Math.max(widest, s.lastBatchSize));
      const out = await together(engine, jobs);
      engine.onSteps = null;
      const after = await engine.refreshStats();
      return {
        perStep: bytesPerStep(before, after),
        steps: after.hostDeviceBytes.steps - before.hostDeviceBytes.steps,
        widest,
        tokens: out.map((c) => c.tokens),
      };
    };
    const [a, b] = [await measure(on), await measure(off)];
    expect(a.tokens).toEqual(b.tokens);
    expect(a.widest).toBe(32);
    expect(a.steps).toBeGreaterThanOrEqual(19);
    console.log(
      `bytes per step at batch 32 (V = ${VOCAB}): device sampling ${a.perStep.toFixed(0)}, host sampling ${b.perStep.toFixed(0)} (${a.steps} steps)`,
    );
    expect(a.perStep).toBeLessThanOrEqual(64 * 1024);
    expect(b.perStep).toBeGreaterThan(64 * 1024); // the measure can fail: the logits alone are 32 × 2048 × 4 bytes
  }, 180_000);

  it('logits jobs through a device-sampling graph equal those of the plain graph', async () => {
    for (const positions of ['last', 'all'] as const) {
      const j = { inputIds: prompt(7, 9), lambdas: [0, 0.5, 1.5], positions, topLogprobs: 8, includeBranches: true };
      const [a, b] = [await on.logits(j), await off.logits(j)];
      expect(a.blends.map((x) => x.top.map((p) => p.map((t) => t.token)))).toEqual(
        b.blends.map((x) => x.top.map((p) => p.map((t) => t.token))),
      );
      a.blends.forEach((x, k) =>
        x.top.flat().forEach((t, i) => expect(Math.abs(t.logprob - b.blends[k].top.flat()[i].logprob)).toBeLessThan(1e-5)),
      );
      expect(a.branches?.aligned.map((p) => p.map((t) => t.token))).toEqual(
        b.branches?.aligned.map((p) => p.map((t) => t.token)),
      );
    }
  }, 60_000);

  it('a row whose logits turn all NaN ends alone with non_finite_logits, as with the host sampler', async () => {
    const D = 64; // hidden size of the tiny preset
    const bigram = bigramModel('Poison!');
    const c = bigram.cycle;
    // c2's embedding holds a NaN: the logits are finite until c2 is the input, then all NaN
    const model = join(tempDir(), 'nan-later');
    poisonCheckpoint(bigram.dir, model, [{ tensor: 'model.embed_tokens.weight', index: c[2] * D + 2, value: NaN }]);
    const results: Collected[][] = [];
    for (const mode of ['on', 'off'] as const) {
      const e = await startEngine({ mode: 'single', model }, { deviceSampling: mode });
      try {
        results.push(
          await together(e, [
            job([c[0]], 1, 8, { temperature: 1.2, seed: 3 }),
            job([c[3]], 1, 3),
            job([c[4]], 1, 2, { temperature: 0.5, seed: 4 }),
          ]),
        );
      } finally {
        await e.shutdown();
      }
    }
    const [a, b] = results;
    expect(a[0].finish).toBe('error');
    expect(a[0].events.at(-1)?.error?.code).toBe('non_finite_logits');
    expect(a[0].events.at(-1)?.error).toEqual(b[0].events.at(-1)?.error);
    expect(a.map((x) => x.tokens)).toEqual(b.map((x) => x.tokens));
    expect(a.slice(1).map((x) => x.finish)).toEqual(['length', 'length']);
  }, 120_000);
});

describe('graph cache key of the sampling variant', () => {
  const spec: GraphSpec = { mode: 'single', floatType: 'float32', maxContext: 64 };
  it('is the key of before when the option is off, another one when it is on (step graphs only)', () => {
    // the key as it was computed before the option existed
    const old = createHash('sha256')
      .update(JSON.stringify({ v: GRAPH_FORMAT_VERSION, variant: 'step', mode: 'single', floatType: 'float32', maxContext: 64 }))
      .update('-')
      .update('-')
      .update('-')
      .digest('hex')
      .slice(0, 20);
    expect(graphCacheKey(spec)).toBe(old);
    expect(graphCacheKey({ ...spec, deviceSampling: false })).toBe(old);
    expect(graphCacheKey({ ...spec, deviceSampling: true })).not.toBe(old);
    expect(graphCacheKey({ ...spec, deviceSampling: true }, 'decode-loop')).toBe(graphCacheKey(spec, 'decode-loop'));
  });
});
