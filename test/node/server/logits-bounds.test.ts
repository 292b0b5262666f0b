/**
 * `/v1/logits` answers are bounded: positions × (λ count + 2 with branches) × top_logprobs entries at most
 * `limits.max_logits_entries` (shared/src/logits-bounds.ts), refused with a 400 naming the fields before the engine
 * runs; an answer at the bound is served whole and exact; and a large answer is written out in pieces, so the event
 * loop keeps serving others while it goes out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import type { LogitsResponse } from '../../../shared/src/responses.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
const MAX_ENTRIES = 1_000;
let small: RunningBackend;
let large: RunningBackend;
let standard: RunningBackend;

beforeAll(async () => {
  const model = { id: 'inra', mode: 'inra', model: tinyInra(seed), default_lambda: 0.5, lambda_range: [-1, 2], max_context: 512 };
  small = await startTestBackend([model], { limits: { max_logits_entries: MAX_ENTRIES } });
  large = await startTestBackend([model], { limits: { max_logits_entries: 1 << 20 } });
  standard = await startTestBackend([model]);
}, 180_000);
afterAll(async () => {
  await small?.stop();
  await large?.stop();
  await standard?.stop();
  cleanupTempDirs();
});

const ids = (n: number) => Array.from({ length: n }, (_, i) => 3 + (i % 50));

describe(`/v1/logits answer bound (seed ${seed})`, () => {
  it('over the bound: a 400 naming positions, lambdas, top_logprobs and include_branches, before any forward pass', async () => {
    const before = (await small.registry.models()[0].engine.refreshStats()).forwardPasses;
    const cases = [
      {
        body: { input_ids: ids(30), positions: 'all', lambdas: [0, 1], top_logprobs: 20 },
        param: 'positions',
        entries: 30 * 2 * 20,
      },
      {
        body: { input_ids: ids(10), positions: 'all', lambdas: [0.5], top_logprobs: 40, include_branches: true },
        param: 'positions',
        entries: 10 * 3 * 40,
      },
      {
        body: { input_ids: ids(5), lambdas: Array.from({ length: 32 }, (_, i) => i / 16 - 0.5), top_logprobs: 100 },
        param: 'top_logprobs',
        entries: 32 * 100,
      },
    ];
    for (const c of cases) {
      const res = await send(small.url, '/v1/logits', { model: 'inra', ...c.body });
      expect(res.status, JSON.stringify(c.body)).toBe(400);
      const err = await errorOf(res);
      expect(err).toMatchObject({ type: 'invalid_request_error', code: 'logits_answer_too_large', param: c.param });
      expect(err.message).toContain(`${c.entries} entries`);
      expect(err.message).toContain(String(MAX_ENTRIES));
      for (const f of ['positions', 'lambdas', 'top_logprobs']) expect(err.message).toContain(f);
    }
    expect((await small.registry.models()[0].engine.refreshStats()).forwardPasses).toBe(before);
  });

  it('at the bound: served whole, every position and λ with exactly top_logprobs alternatives', async () => {
    // 25 positions × 2 λ × 20 = 1000 entries
    const res = await send(small.url, '/v1/logits', {
      model: 'inra',
      input_ids: ids(25),
      positions: 'all',
      lambdas: [0, 1],
      top_logprobs: 20,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as LogitsResponse;
    expect(body.results.map((r) => r.lambda)).toEqual([0, 1]);
    for (const r of body.results) {
      expect(r.positions.map((p) => p.position)).toEqual(Array.from({ length: 25 }, (_, i) => i));
      for (const p of r.positions) expect(p.top_logprobs).toHaveLength(20);
    }
    expect(body.usage.prompt_tokens).toBe(25);
  });

  it("the default bound refuses the review's 435 MB request shape at once", { timeout: 20_000 }, async () => {
    const res = await send(standard.url, '/v1/logits', {
      model: 'inra',
      input_ids: ids(500),
      positions: 'all',
      lambdas: Array.from({ length: 32 }, (_, i) => i / 16 - 0.5),
      top_logprobs: 100,
      include_branches: true,
    });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'logits_answer_too_large', param: 'positions' });
  });

  it('a large answer goes out in pieces: the same JSON as one object, and the event loop is never held long', async () => {
    // 500 positions × 20 λ × 30 = 300,000 entries (~20 MB of JSON)
    const lambdas = Array.from({ length: 20 }, (_, i) => i / 10 - 0.5);
    // the longest stretch the event loop went without running a 5 ms timer, counted from the moment the engine's
    // result reaches the route: what follows is turning it into JSON and sending it (receiving the result from the
    // engine's thread is the engine's part and not measured here)
    const engine = large.registry.models()[0].engine;
    const logits = engine.logits.bind(engine);
    let resultAt = Infinity;
    engine.logits = async (job) => {
      const r = await logits(job);
      resultAt = performance.now();
      return r;
    };
    let last = performance.now();
    let longest = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      if (now > resultAt) longest = Math.max(longest, now - Math.max(last, resultAt));
      last = now;
    }, 5);
    try {
      const res = await send(large.url, '/v1/logits', {
        model: 'inra',
        input_ids: ids(500),
        positions: 'all',
        lambdas,
        top_logprobs: 30,
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      const serializing = performance.now() - resultAt;
      clearInterval(ticker);
      const body = JSON.parse(text) as LogitsResponse;
      expect(body.results).toHaveLength(20);
      for (const r of body.results) {
        expect(r.positions).toHaveLength(500);
        for (const p of r.positions) expect(p.top_logprobs).toHaveLength(30);
      }
      // one JSON.stringify (and the token texts before it) holds the loop for nearly all of the time the answer
      // takes; in pieces, no single hold is more than a small part of it (relative: this machine's speed varies)
      console.log(
        `[logits stream] ${text.length} bytes over ${serializing.toFixed(0)} ms; longest event-loop hold ${longest.toFixed(1)} ms`,
      );
      expect(longest).toBeLessThan(serializing / 5);
    } finally {
      clearInterval(ticker);
      engine.logits = logits;
    }
  });
});
