import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { eventually } from './helpers/eventually.ts';
import { admin, callWith } from './helpers/http.ts';
import { readSse, streamedText } from './helpers/sse.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

/** Repeats a request until it is served from the cache (entries are stored after the response). */
function untilHit(send: () => Promise<Response>): Promise<Response> {
  return eventually('a cache HIT', async () => {
    const res = await send();
    if (res.headers.get('x-realign-cache') === 'HIT') return res;
    await res.body?.cancel();
    return null;
  });
}

/**
 * Waits until the tenant's cache holds an entry (a MISS stores its answer after the response, in waitUntil), without
 * sending requests that would themselves miss and call the backend again.
 */
async function untilStored(generation: string): Promise<void> {
  await eventually('a stored cache entry', async () => {
    const { keys } = await env.CACHE.list({ prefix: `resp:v2:${generation}:` });
    return keys.length > 0 ? true : null;
  });
}

type Chat = { id: string; choices: { message: { content: string } }[]; usage: { total_tokens: number } };

/** A test's own backend (a tagged stub) so that its request count is exact. */
function setup(tag: string) {
  const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('ok', tag) }]) };
  return (key: string, body: unknown, headers: Record<string, string> = {}) =>
    callWith(vars, body && (body as { prompt?: unknown }).prompt !== undefined ? '/v1/completions' : '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
}

describe('response cache', () => {
  it('answers a repeated deterministic request from the cache (MISS, then HIT) without calling the backend', async () => {
    const tag = uniqueTag('cache-hit');
    const send = setup(tag);
    const t = await makeTenant();
    const body = { model: t.model, messages: [{ role: 'user', content: 'same' }], temperature: 0 };
    const first = await send(t.key, body);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-realign-cache')).toBe('MISS');
    const firstJson = (await first.json()) as Chat;
    // The entry is stored after the response (waitUntil).
    await untilStored(t.generation);
    const hit = await send(t.key, body);
    expect(hit.headers.get('x-realign-cache')).toBe('HIT');
    expect(hit.headers.get('x-realign-lambda')).toBe('1');
    expect(await hit.json()).toEqual(firstJson);
    const backendCalls = (await stubRequests(tag)).length;
    expect(backendCalls).toBeGreaterThanOrEqual(1);
    const again = await send(t.key, body);
    expect(again.headers.get('x-realign-cache')).toBe('HIT');
    expect((await stubRequests(tag)).length).toBe(backendCalls);
    const row = await usageRowOf(again.headers.get('x-request-id')!);
    // The stub reports 5 prompt and 3 completion tokens; a HIT records them with cached = 1.
    expect(row).toMatchObject({ cached: 1, status: 200, prompt_tokens: 5, completion_tokens: 3 });
  });

  it('keys on the resolved λ: a different λ is a different entry', async () => {
    const send = setup(uniqueTag('cache-lambda'));
    const t = await makeTenant();
    const body = { model: t.model, messages: [{ role: 'user', content: 'λ' }], seed: 7, lambda: 0.5 };
    expect((await send(t.key, body)).headers.get('x-realign-cache')).toBe('MISS');
    const other = await send(t.key, { ...body, lambda: 0.25 });
    expect(other.headers.get('x-realign-cache')).toBe('MISS');
    expect(((await other.json()) as Chat).choices[0]!.message.content).toContain('λ=0.25');
  });

  it('keys on the adapter and the mix: requests differing only in either do not share an entry, identical ones do', async () => {
    const tag = uniqueTag('cache-adapter');
    const send = setup(tag);
    const t = await makeTenant({ presets: { careful: { lambda: 0.5 } } });
    await admin('PUT', `/tenants/${t.tenantId}/presets/careful`, { lambda: 0.5, adapter: 'safe' });
    const body = (extra: Record<string, unknown>) => ({
      model: t.model,
      messages: [{ role: 'user', content: 'adapters' }],
      temperature: 0,
      ...extra,
    });
    const cache = async (extra: Record<string, unknown>) => {
      const res = await send(t.key, body(extra));
      expect(res.status).toBe(200);
      await res.body?.cancel();
      return res.headers.get('x-realign-cache');
    };
    // each entry is stored (waited for) before the request that must not find it is sent
    await untilHit(() => send(t.key, body({ adapter: 'concise', lambda: 0.5 })));
    expect(await cache({ adapter: 'safe', lambda: 0.5 })).toBe('MISS');
    expect(await cache({ lambda: 0.5 })).toBe('MISS');
    await untilHit(() => send(t.key, body({ mix: { concise: 0.5, safe: 0.2 } })));
    expect(await cache({ mix: { concise: 0.5, safe: 0.3 } })).toBe('MISS');
    expect(await cache({ mix: { concise: 0.5 } })).toBe('MISS');
    // the same mix in another order, and the same resolved adapter + λ through a preset, are the same request
    expect(await cache({ mix: { safe: 0.2, concise: 0.5 } })).toBe('HIT');
    await untilHit(() => send(t.key, body({ adapter: 'safe', lambda: 0.5 })));
    expect(await cache({ preset: 'careful' })).toBe('HIT');
    expect(await cache({ adapter: 'concise', lambda: 0.5 })).toBe('HIT');
  });

  it('bypasses the cache for Cache-Control: no-cache, and does not store that answer', async () => {
    const tag = uniqueTag('cache-bypass');
    const send = setup(tag);
    const t = await makeTenant();
    const body = { model: t.model, messages: [{ role: 'user', content: 'fresh' }], temperature: 0 };
    const a = await send(t.key, body, { 'cache-control': 'no-cache' });
    const b = await send(t.key, body, { 'cache-control': 'no-cache' });
    expect(a.headers.get('x-realign-cache')).toBe('BYPASS');
    expect(b.headers.get('x-realign-cache')).toBe('BYPASS');
    expect(((await a.json()) as Chat).choices[0]!.message.content).not.toBe(
      ((await b.json()) as Chat).choices[0]!.message.content,
    );
    expect((await stubRequests(tag)).length).toBe(2);
  });

  it('never caches sampling requests (temperature > 0 or unset, no seed)', async () => {
    const tag = uniqueTag('cache-sampling');
    const send = setup(tag);
    const t = await makeTenant();
    for (const extra of [{ temperature: 0.7 }, {}, { temperature: 0.7 }, {}]) {
      const res = await send(t.key, { model: t.model, messages: [{ role: 'user', content: 'dice' }], ...extra });
      expect(res.headers.get('x-realign-cache')).toBe('BYPASS');
    }
    expect((await stubRequests(tag)).length).toBe(4);
  });

  it('does not cache for a tenant whose TTL is 0', async () => {
    const send = setup(uniqueTag('cache-off'));
    const t = await makeTenant({ cacheTtlSeconds: 0 });
    const res = await send(t.key, { model: t.model, messages: [{ role: 'user', content: 'x' }], temperature: 0 });
    expect(res.headers.get('x-realign-cache')).toBe('BYPASS');
  });

  it('replays a cached answer to a streamed request as a valid SSE stream', async () => {
    const tag = uniqueTag('cache-replay');
    const send = setup(tag);
    const t = await makeTenant();
    const body = { model: t.model, messages: [{ role: 'user', content: 'stream me' }], temperature: 0 };
    const stored = (await (await send(t.key, body)).json()) as Chat;
    const res = await untilHit(() => send(t.key, { ...body, stream: true, stream_options: { include_usage: true } }));
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const data = await readSse(res);
    expect(data.at(-1)).toBe('[DONE]');
    const events = data
      .slice(0, -1)
      .map((d) => JSON.parse(d) as { object: string; id: string; choices: unknown[]; usage?: unknown });
    expect(new Set(events.map((e) => e.object))).toEqual(new Set(['chat.completion.chunk']));
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    expect(streamedText(data)).toBe(stored.choices[0]!.message.content);
    expect(events.at(-1)).toMatchObject({ choices: [], usage: stored.usage });
  });

  it('fills the cache from a streamed MISS; a later JSON request is a HIT with the same text', async () => {
    const tag = uniqueTag('cache-stream-fill');
    const send = setup(tag);
    const t = await makeTenant();
    const body = { model: t.model, prompt: 'complete me', temperature: 0 };
    const streamed = await send(t.key, { ...body, stream: true });
    expect(streamed.headers.get('x-realign-cache')).toBe('MISS');
    const text = streamedText(await readSse(streamed));
    await untilStored(t.generation);
    const res = await send(t.key, body);
    expect(res.headers.get('x-realign-cache')).toBe('HIT');
    expect(((await res.json()) as { choices: { text: string }[] }).choices[0]!.text).toBe(text);
    expect((await stubRequests(tag)).length).toBe(1);
  });
});
