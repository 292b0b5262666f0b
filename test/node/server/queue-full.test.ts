/**
 * Overload: with one decoding slot and one queue place, a burst of long requests gets 429 (Retry-After and an
 * OpenAI error body) for what does not fit, every admitted request completes in full, and none is lost. A client
 * that leaves while queued gives its place back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { startBigramBackend } from '../helpers/backend.ts';
import { errorOf, eventually, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

const TEXT = 'Waits世界🙂ж✓ŋ';
let backend: RunningBackend;
let engine: Engine;
let cycle: number[];

beforeAll(async () => {
  ({ backend, engine, cycle } = await startBigramBackend(TEXT, { max_batch: 1, max_queue: 1 }));
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

type Outcome = { status: number; text?: string; tokens?: number; code?: string | null; retryAfter?: string | null };

/** One request, read to its end: its text and token count when it succeeded, its error when not. */
async function run(i: number, maxTokens: number): Promise<Outcome> {
  const stream = i % 2 === 1;
  const res = await send(backend.url, '/v1/completions', {
    model: 'bigram',
    prompt: 'go',
    max_tokens: maxTokens,
    temperature: 0,
    stream,
    ...(stream ? { stream_options: { include_usage: true } } : {}),
  });
  if (res.status !== 200) {
    const err = await errorOf(res);
    return { status: res.status, code: err.code, retryAfter: res.headers.get('retry-after') };
  }
  if (!stream) {
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    return { status: 200, text: body.choices[0].text, tokens: body.usage.completion_tokens };
  }
  let text = '';
  let tokens = -1;
  let done = false;
  for await (const data of sseData(res)) {
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const chunk = JSON.parse(data) as {
      choices: { text: string }[];
      usage?: { completion_tokens: number } | null;
      error?: unknown;
    };
    expect(chunk.error).toBeUndefined();
    text += chunk.choices[0]?.text ?? '';
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  expect(done).toBe(true);
  return { status: 200, text, tokens };
}

describe('a full queue', () => {
  it('a burst of six long requests: the overflow gets 429 with Retry-After, the rest complete, none is lost', async () => {
    const rounds = 12;
    const maxTokens = cycle.length * rounds;
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => run(i, maxTokens)));
    const ok = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status !== 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const o of ok) expect({ text: o.text, tokens: o.tokens }).toEqual({ text: TEXT.repeat(rounds), tokens: maxTokens });
    for (const o of refused) {
      expect([429, 503]).toContain(o.status);
      expect(o.code).toEqual(o.status === 429 ? 'queue_full' : expect.any(String));
      expect(Number(o.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    expect(refused.some((o) => o.status === 429)).toBe(true);
    const s = await engine.refreshStats();
    expect({ running: s.running, queued: s.queued, rows: s.rows, reserved: s.kvTokensReserved }).toEqual({
      running: 0,
      queued: 0,
      rows: 0,
      reserved: 0,
    });
  });

  it('one running and one queued: the next is refused; a queued client that leaves frees its place', async () => {
    const running = new AbortController();
    const long = await send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: 2000, temperature: 0, stream: true },
      { signal: running.signal },
    );
    expect(long.status).toBe(200); // admitted: the status waits for the first token
    const queued = new AbortController();
    const waiting = send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: 5 },
      { signal: queued.signal },
    ).catch((e: Error) => e.name);
    expect(await eventually(async () => (await engine.refreshStats()).queued === 1, 5000)).toBe(true);

    const refused = await send(backend.url, '/v1/chat/completions', {
      model: 'bigram',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 5,
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    const err = await errorOf(refused);
    expect(err).toMatchObject({ type: 'rate_limit_error', code: 'queue_full', param: null });
    expect(err.message).toMatch(/queue is full \(1 waiting\); retry later/);

    queued.abort();
    expect(await waiting).toBe('AbortError');
    expect(await eventually(async () => (await engine.refreshStats()).queued === 0, 5000)).toBe(true);
    // the freed place takes a new request, which completes once the long one is gone
    const next = run(0, cycle.length);
    expect(await eventually(async () => (await engine.refreshStats()).queued === 1, 5000)).toBe(true);
    running.abort();
    expect(await next).toEqual({ status: 200, text: TEXT, tokens: cycle.length });
    expect(await eventually(async () => (await engine.refreshStats()).rows === 0, 5000)).toBe(true);
  });
});
