/**
 * Fault injection through the whole real system: two `realign serve` processes behind `wrangler dev` (local D1),
 * driven over HTTP. Backend A has routing weight 1000 against B's 1, so A takes (nearly) every request while it is
 * healthy. Faults, in order:
 *   - broken weights: a +∞ in lm_head (the token is never chosen; logprobs stay finite) and a NaN in the final norm
 *     (no token can be sampled: the request fails with a message, streamed or not);
 *   - a full engine queue (max_batch 1, max_queue 1): the overflow gets 429 with Retry-After, the rest complete,
 *     every request ends exactly once;
 *   - backend A killed (SIGKILL) mid-stream: the client gets one error event and a closed stream, the worker marks A
 *     down, and the next requests go straight to B.
 * The models are the bigram checkpoint (test/node/helpers/bigram.ts), which spells a known text, and poisoned
 * copies of it (test/node/reliability/poison-checkpoint.ts). Logs are checked for the prompts at the end.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, type RunningSystem } from '../../scripts/lib/system.ts';
import { bigramModel } from '../node/helpers/bigram.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../node/helpers/models.ts';
import { poisonCheckpoint } from '../node/reliability/poison-checkpoint.ts';
import { metric, scrapeMetrics } from './helpers/backend-probe.ts';
import { readStream, streamText } from './helpers/sse-client.ts';

const seed = testSeed();
const TEXT = 'Faults!';
const D = 64; // hidden size of the tiny preset
/** Text that must never appear in any log (prompts are not logged by default). */
const MARKER = `PROMPT-MARKER-${seed.toString(36)}`;
let sys: RunningSystem;
let key: string;
let cycle: number[];
let tokenString: (id: number) => string;

beforeAll(async () => {
  const bigram = bigramModel(TEXT);
  cycle = bigram.cycle;
  tokenString = (id) => bigram.tokenizer.tokenString(id);
  const infHead = join(tempDir(), 'inf-head');
  poisonCheckpoint(bigram.dir, infHead, [{ tensor: 'lm_head.weight', index: cycle[1] * D, value: Infinity }]);
  const nanNorm = join(tempDir(), 'nan-norm');
  poisonCheckpoint(bigram.dir, nanNorm, [{ tensor: 'model.norm.weight', index: 0, value: NaN }]);
  const models = [
    { id: 'bigram', mode: 'single', model: bigram.dir, max_batch: 1, max_queue: 1 },
    { id: 'inf-head', mode: 'single', model: infHead },
    { id: 'nan-norm', mode: 'single', model: nanNorm },
  ].map((m) => ({ ...m, device: 'cpu', threads: 1 }));
  sys = await startSystem({
    stateDir: join(tempDir('realign-e2e-faults-'), 'state'),
    backends: [
      { models, weight: 1000 },
      { models, weight: 1 },
    ],
    models: models.map((m) => ({ id: m.id, defaultLambda: 1 })),
  });
  // a tenant of its own: no default preset, so single-checkpoint models get their default λ 1
  const tenant = `faults-${seed}`;
  expect(
    (
      await sys.admin('POST', '/admin/tenants', {
        id: tenant,
        name: tenant,
        requests_per_minute: 100_000,
        tokens_per_minute: 100_000_000,
      })
    ).status,
  ).toBe(201);
  for (const m of models)
    expect((await sys.admin('PUT', `/admin/tenants/${tenant}/models/${m.id}`, {})).status).toBeLessThan(300);
  key = ((await (await sys.admin('POST', `/admin/tenants/${tenant}/keys`, { name: 'faults' })).json()) as { key: string }).key;
}, 300_000);
afterAll(async () => {
  await sys?.stop();
  cleanupTempDirs();
}, 60_000);

function post(path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${sys.edgeUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

type ErrorJson = { error: { message: string; type: string; param: string | null; code: string | null } };

describe(`faults in real backends (seed ${seed})`, () => {
  it('a +∞ weight in lm_head: the poisoned token is never generated, streamed or not, and logits stay finite', async () => {
    // token strings are unique in a vocabulary, so the logprobs' token lists show exactly which tokens were chosen
    const poisoned = tokenString(cycle[1]);
    const plain = await post('/v1/completions', {
      model: 'inf-head',
      prompt: `${MARKER} ${TEXT}`,
      max_tokens: 3 * cycle.length,
      temperature: 0,
      logprobs: 0,
    });
    expect(plain.status).toBe(200);
    const choice = ((await plain.json()) as { choices: { finish_reason: string; logprobs: { tokens: string[] } }[] }).choices[0];
    expect(choice.finish_reason).toBe('length');
    expect(choice.logprobs.tokens).toHaveLength(3 * cycle.length);
    expect(choice.logprobs.tokens).not.toContain(poisoned);

    const streamed = await readStream(
      await post('/v1/completions', {
        model: 'inf-head',
        prompt: MARKER,
        max_tokens: 3 * cycle.length,
        temperature: 1,
        seed: 3,
        logprobs: 0,
        stream: true,
      }),
    );
    expect(streamed.errors).toEqual([]);
    expect(streamed.done).toBe(true);
    const tokens = streamed.data
      .filter((d) => d !== '[DONE]')
      .flatMap(
        (d) => (JSON.parse(d) as { choices: { logprobs: { tokens: string[] } | null }[] }).choices[0]?.logprobs?.tokens ?? [],
      );
    expect(tokens).toHaveLength(3 * cycle.length);
    expect(tokens).not.toContain(poisoned);

    // the prompt ends with c0, after which c1 (now +∞) would be the only likely token
    const logits = await post('/v1/logits', { model: 'inf-head', input_ids: [cycle[0]], top_logprobs: 20 });
    expect(logits.status).toBe(200);
    const top = (
      (await logits.json()) as { results: { positions: { top_logprobs: { token_id: number; logprob: unknown }[] }[] }[] }
    ).results[0].positions[0].top_logprobs;
    expect(top.map((t) => t.token_id)).not.toContain(cycle[1]);
    for (const t of top) expect(Number.isFinite(t.logprob)).toBe(true);
  });

  it('a full engine queue: the overflow gets 429 with Retry-After, the rest complete, every request ends exactly once', async () => {
    const rounds = 20;
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const res = await post('/v1/completions', {
          model: 'bigram',
          prompt: `${MARKER} ${i}`,
          max_tokens: rounds * cycle.length,
          temperature: 0,
          stream: true,
        });
        if (res.status !== 200)
          return {
            status: res.status,
            retryAfter: res.headers.get('retry-after'),
            error: ((await res.json()) as ErrorJson).error,
          };
        const read = await readStream(res);
        return { status: 200, done: read.done, errors: read.errors.length, text: streamText(read) };
      }),
    );
    const ok = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    console.log(
      `[faults queue full] ${outcomes.length} requests: ${ok.length} completed, ${refused.length} refused (${refused.map((o) => o.status).join(', ')}), lost 0`,
    );
    expect(ok.length + refused.length).toBe(6);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const o of ok) expect(o).toEqual({ status: 200, done: true, errors: 0, text: TEXT.repeat(rounds) });
    for (const o of refused) {
      expect([429, 503]).toContain(o.status);
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(o.error).toMatchObject({
        type: expect.stringMatching(/rate_limit_error|backend_error/),
        message: expect.any(String),
      });
    }
    // nothing left in either engine
    for (const url of sys.backendUrls) {
      await expect
        .poll(async () => {
          const m = await scrapeMetrics(url, sys.hmacSecret);
          return [
            metric(m, 'realign_running_sequences', { model: 'bigram' }),
            metric(m, 'realign_queue_depth', { model: 'bigram' }),
          ];
        })
        .toEqual([0, 0]);
    }
  });

  it('a backend killed mid-stream: one error event and a closed stream; it is marked down and the next requests go to the other', async () => {
    const res = await post('/v1/completions', {
      model: 'bigram',
      prompt: MARKER,
      max_tokens: 1500,
      temperature: 0,
      stream: true,
    });
    expect(res.status).toBe(200);
    let killed = -1;
    const read = await readStream(res, async (_, n) => {
      if (n !== 3) return;
      // kill whichever backend runs this stream (A, unless the 1-in-1000 draw picked B)
      for (const [i, url] of sys.backendUrls.entries()) {
        if (metric(await scrapeMetrics(url, sys.hmacSecret), 'realign_running_sequences', { model: 'bigram' }) > 0) killed = i;
      }
      await sys.backends[killed].stop('SIGKILL');
    });
    expect(killed).toBeGreaterThanOrEqual(0);
    console.log(`[faults kill] SIGKILL to backend ${killed === 0 ? 'A (weight 1000)' : 'B (weight 1)'} after 3 events`);
    expect(read.done).toBe(false);
    expect(read.rest).toBe('');
    expect(read.errors).toEqual([
      expect.objectContaining({
        type: 'backend_error',
        code: 'stream_interrupted',
        message: expect.stringMatching(/broke|ended the stream early/),
      }),
    ]);
    expect(read.data.at(-1)).toContain('"error"');

    // the dead backend is out of rotation: every next request is served by the other on the first attempt (with A
    // at weight 1000, an unmarked A would be tried first almost every time)
    const attempts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const next = await post('/v1/completions', {
        model: 'bigram',
        prompt: `${MARKER} after ${i}`,
        max_tokens: cycle.length,
        temperature: 0,
      });
      expect(next.status).toBe(200);
      expect(((await next.json()) as { choices: { text: string }[] }).choices[0].text).toBe(TEXT);
      attempts.push(next.headers.get('x-realign-attempts') ?? '?');
    }
    expect(attempts).toEqual(Array(5).fill('1'));
  });

  it('a NaN weight in the final norm: no token can be sampled, the request fails with a message, streamed or not', async () => {
    const plain = await post('/v1/completions', { model: 'nan-norm', prompt: MARKER, max_tokens: 4, temperature: 0 });
    // this request's failure on a working backend (shared/src/failure-scope.ts): passed on as the backend's 500
    expect(plain.status).toBe(500);
    expect(((await plain.json()) as ErrorJson).error).toMatchObject({
      type: 'server_error',
      code: 'non_finite_logits',
      message: expect.stringMatching(/NaN/),
    });

    const res = await post('/v1/completions', {
      model: 'nan-norm',
      prompt: MARKER,
      max_tokens: 4,
      temperature: 0.7,
      stream: true,
    });
    expect(res.status).toBe(200);
    const read = await readStream(res);
    expect(read.done).toBe(false);
    expect(read.errors).toEqual([expect.objectContaining({ code: 'non_finite_logits', message: expect.stringMatching(/NaN/) })]);
    expect(streamText(read)).toBe('');
  });

  it('no prompt text, API key, admin token or HMAC secret reached any log', () => {
    const logs = [sys.worker, ...sys.backends].map((p) => p.output()).join('\n');
    expect(logs).toMatch(/"msg":"request"/);
    for (const secret of [MARKER, key.slice(9), sys.adminToken, sys.hmacSecret]) expect(logs).not.toContain(secret);
  });
});
