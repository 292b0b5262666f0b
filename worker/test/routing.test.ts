import { describe, expect, it } from 'vitest';
import { eventData, SseSplitter } from '../../shared/src/sse.ts';
import { eventually } from './helpers/eventually.ts';
import { makeTenant, type TestTenant } from './helpers/fixtures.ts';
import { callWith } from './helpers/http.ts';
import { readSse, streamedText } from './helpers/sse.ts';
import { refusedBackendUrl, releaseStub, stubAborted, stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

// The 'uncaught exception ... Network connection lost' lines these tests print come from workerd itself: it logs
// them for any fetch() to a refused port, even one awaited inside try/catch (checked with a bare GET).

/** Weight that makes a backend the first choice except with probability ~1e-9. */
const FIRST = 1e9;

function sender(t: TestTenant, backends: { url: string; weight: number }[], vars: Record<string, string> = {}) {
  const all = { BACKENDS: JSON.stringify(backends), ...vars };
  return (body: Record<string, unknown>, path = '/v1/chat/completions') =>
    callWith(all, path, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'route me' }], ...body }),
    });
}

/** Reads the next chunk of `reader` as text, failing the test if nothing arrives within `ms`. */
async function nextChunk(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number): Promise<string | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no chunk within ${ms} ms`)), ms)),
  );
  try {
    const r = await Promise.race([reader.read(), timeout]);
    return r.done ? null : new TextDecoder().decode(r.value);
  } finally {
    clearTimeout(timer);
  }
}

describe('routing and failover', () => {
  it('fails over when a backend refuses connections, then keeps it out of rotation', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('failover-refused');
    const refused = refusedBackendUrl() + '/' + tag;
    const send = sender(t, [
      { url: refused, weight: FIRST },
      { url: stubBackend('ok', tag), weight: 1 },
    ]);
    const res = await send({});
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-attempts')).toBe('2');
    expect((await stubRequests(tag)).length).toBe(1);
    const next = await send({});
    expect(next.status).toBe(200);
    expect(next.headers.get('x-realign-attempts'), 'the refusing backend is cooling down').toBe('1');
  });

  it("fails over on a backend's 5xx before the first byte (a 503: it cannot take work now)", async () => {
    const t = await makeTenant();
    const tag = uniqueTag('failover-503');
    const send = sender(t, [
      { url: stubBackend('fail503', tag), weight: FIRST },
      { url: stubBackend('ok', tag), weight: 1 },
    ]);
    const res = await send({ stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-attempts')).toBe('2');
    expect((await readSse(res)).at(-1)).toBe('[DONE]');
    expect((await stubRequests(tag)).map((r) => r.behaviour)).toEqual(['fail503', 'ok']);
  });

  it('answers 503 when no backend can be reached, and 502 when all fail', async () => {
    const t = await makeTenant();
    const unreachable = await sender(t, [
      { url: refusedBackendUrl() + '/a', weight: 1 },
      { url: refusedBackendUrl() + '/b', weight: 1 },
    ])({});
    expect(unreachable.status).toBe(503);
    expect(unreachable.headers.get('retry-after')).toBe('1');
    expect(await unreachable.json()).toMatchObject({ error: { type: 'backend_error', code: 'backend_unavailable' } });
    const tag = uniqueTag('all-502');
    const failing = await sender(t, [{ url: stubBackend('fail502', tag), weight: 1 }])({});
    expect(failing.status).toBe(502);
    expect(await failing.json()).toMatchObject({ error: { type: 'backend_error', code: 'backend_error' } });
  });

  it("passes a loading backend's 503 on, with its message, after trying the others", async () => {
    const t = await makeTenant();
    const tag = uniqueTag('loading');
    const res = await sender(t, [{ url: stubBackend('unavailable', tag), weight: 1 }])({});
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { message: 'stub: model still loading', code: 'loading' } });
  });

  it('does not retry once a stream started: the client gets an error event, the backend is marked down', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('die');
    const okTag = uniqueTag('die-ok');
    const send = sender(t, [
      { url: stubBackend('die', tag), weight: FIRST },
      { url: stubBackend('ok', okTag), weight: 1 },
    ]);
    const res = await send({ stream: true });
    expect(res.status).toBe(200);
    const data = await readSse(res);
    expect(data).not.toContain('[DONE]');
    expect(streamedText(data.slice(0, -1))).toBe('answer #1');
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ error: { type: 'backend_error', code: 'stream_interrupted' } });
    expect((await stubRequests(okTag)).length, 'no retry after the first byte').toBe(0);
    expect((await usageRowOf(res.headers.get('x-request-id')!)).status).toBe(502);
    const next = await send({});
    expect(next.status).toBe(200);
    expect(next.headers.get('x-realign-attempts')).toBe('1');
    expect((await stubRequests(okTag)).length, 'the broken backend is out of rotation').toBe(1);
  });

  it('passes a stream through chunk by chunk: the first event arrives while the backend still holds the rest', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('gated');
    const res = await sender(t, [{ url: stubBackend('gated', tag), weight: 1 }])({ stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    for (const h of [
      'x-request-id',
      'x-realign-lambda',
      'x-realign-preset',
      'x-realign-cache',
      'x-ratelimit-remaining-requests',
      'x-ratelimit-remaining-tokens',
    ]) {
      expect(res.headers.get(h), h).not.toBeNull();
    }
    const reader = res.body!.getReader();
    const first = await nextChunk(reader, 5_000);
    expect(first).toContain('"content":"answer"');
    expect(first).not.toContain('[DONE]');
    await releaseStub(tag);
    const splitter = new SseSplitter();
    const rest: string[] = [...splitter.push(first!)];
    let reads = 1;
    for (let chunk = await nextChunk(reader, 5_000); chunk !== null; chunk = await nextChunk(reader, 5_000)) {
      reads++;
      rest.push(...splitter.push(chunk));
    }
    const data = rest.map(eventData).filter((d): d is string => d !== null);
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(data.at(-1)).toBe('[DONE]');
    expect(streamedText(data)).toBe('answer #1 λ=1 temp=unset max=unset');
  });

  it('closes the backend stream when the client goes away, and records the request as 499', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('hangup');
    const res = await sender(t, [{ url: stubBackend('gated', tag), weight: 1 }])({ stream: true });
    const reader = res.body!.getReader();
    expect(await nextChunk(reader, 5_000)).toContain('answer');
    await reader.cancel();
    await eventually('the backend connection closed', async () => ((await stubAborted(tag)) === 1 ? true : null));
    expect((await usageRowOf(res.headers.get('x-request-id')!)).status).toBe(499);
    await releaseStub(tag);
  });

  it('strips the usage chunk the worker asked for when the client did not, and records usage from it', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('usage-strip');
    const send = sender(t, [{ url: stubBackend('ok', tag), weight: 1 }]);
    const plain = await send({ stream: true });
    const plainEvents = (await readSse(plain))
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as { choices: unknown[]; usage?: unknown });
    expect(plainEvents.every((e) => e.choices.length > 0)).toBe(true);
    expect((await stubRequests(tag))[0]!.body.stream_options).toEqual({ include_usage: true });
    const row = await usageRowOf(plain.headers.get('x-request-id')!);
    expect(row).toMatchObject({
      status: 200,
      stream: 1,
      prompt_tokens: 5,
      completion_tokens: 3,
      aligned_prompt_tokens: 5,
      reference_prompt_tokens: 0,
    });
    const asked = await send({ stream: true, stream_options: { include_usage: true } });
    const last = (await readSse(asked))
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as { choices: unknown[]; usage?: unknown })
      .at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3 });
  });

  it.each([
    ['a streamed request', { stream: true }, { BACKEND_TIMEOUT_MS: '300' }],
    ['a JSON request', {}, { BACKEND_RESPONSE_TIMEOUT_MS: '300' }],
  ])('times out %s whose backend sends no headers (504), without retrying elsewhere', async (_name, body, vars) => {
    const t = await makeTenant();
    const tag = uniqueTag('stall');
    const okTag = uniqueTag('stall-ok');
    const res = await sender(
      t,
      [
        { url: stubBackend('stall', tag), weight: FIRST },
        { url: stubBackend('ok', okTag), weight: 1 },
      ],
      vars,
    )(body);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({
      error: { code: 'backend_timeout', message: 'the backend did not answer within 300 ms; retry later' },
    });
    expect((await stubRequests(okTag)).length).toBe(0);
  });

  it('ends a stream that stalls mid-way with an error event after the idle timeout', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('stall-mid');
    const res = await sender(t, [{ url: stubBackend('gated', tag), weight: 1 }], { STREAM_IDLE_TIMEOUT_MS: '300' })({
      stream: true,
    });
    const data = await readSse(res);
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ error: { code: 'stream_interrupted' } });
    expect(JSON.parse(data.at(-1)!).error.message).toContain('stalled for 300 ms');
    await releaseStub(tag);
  });

  it('answers 502 when a backend sends garbage', async () => {
    const t = await makeTenant();
    const res = await sender(t, [{ url: stubBackend('garbage', uniqueTag('garbage')), weight: 1 }])({});
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: { type: 'backend_error', code: 'bad_backend_response' } });
  });

  it('brings a backend back after its cooldown only when its /readyz probe passes', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('probe');
    const send = sender(t, [{ url: stubBackend('die', tag), weight: 1 }], { HEALTH_COOLDOWN_MS: '1' });
    await readSse(await send({ stream: true }));
    await new Promise((r) => setTimeout(r, 10));
    const res = await send({});
    expect(res.status).toBe(200);
    // (the broken stream's usage is also asked of the backend's ledger: GET /ledger/<id>, not a routing request)
    const seen = (await stubRequests(tag)).map((r) => `${r.method} ${r.path}`).filter((r) => !r.startsWith('GET /ledger/'));
    expect(seen).toEqual(['POST /v1/chat/completions', 'GET /readyz', 'POST /v1/chat/completions']);
  });

  it('forwards completions and logits to the same path on the backend', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('paths');
    const send = sender(t, [{ url: stubBackend('ok', tag), weight: 1 }]);
    const comp = await send({ messages: undefined, prompt: 'p' }, '/v1/completions');
    expect(comp.status).toBe(200);
    expect(await comp.json()).toMatchObject({ object: 'text_completion' });
    const logits = await send({ messages: undefined, input_ids: [1, 2], lambdas: [0, 1] }, '/v1/logits');
    expect(logits.status).toBe(200);
    expect((await stubRequests(tag)).map((r) => r.path)).toEqual(['/v1/completions', '/v1/logits']);
  });
});
