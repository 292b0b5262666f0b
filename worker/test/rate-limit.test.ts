import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { BucketState } from '../src/ratelimit/token-bucket.ts';
import { eventually } from './helpers/eventually.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, callWith, postJson } from './helpers/http.ts';
import { releaseStub, stubBackend, uniqueTag } from './helpers/stub.ts';

const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

/**
 * Moves the tenant's buckets `ms` into the past, as if that much time had passed: a real minute-long wait
 * would make the suite slow, and the DO reads time from Date.now(), which tests cannot advance.
 */
async function timeTravel(generation: string, ms: number): Promise<void> {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(generation));
  await runInDurableObject(stub, (_instance, state) => {
    // Collect first: writing while the listing is open makes it visit the rewritten keys again.
    const buckets = [...state.storage.kv.list<BucketState>()];
    for (const [key, value] of buckets) state.storage.kv.put(key, { ...value, updatedAt: value.updatedAt - ms });
  });
}

describe('rate limits', () => {
  it('counts requests per minute, answers 429 with headers when empty, and recovers after refill', async () => {
    const t = await makeTenant({ requestsPerMinute: 3 });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postJson('/v1/chat/completions', t.key, chat(t.model));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('1000000');
      expect(res.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$/);
      remaining.push(res.headers.get('x-ratelimit-remaining-requests')!);
      await res.body?.cancel();
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await postJson('/v1/chat/completions', t.key, chat(t.model));
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(limited.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(limited.headers.get('x-ratelimit-remaining-tokens')).not.toBeNull();
    expect(limited.headers.get('x-request-id')).toBeTruthy();

    await timeTravel(t.generation, 20_000);
    const one = await postJson('/v1/chat/completions', t.key, chat(t.model));
    expect(one.status, 'a third of a minute refills one of three requests').toBe(200);
    expect((await postJson('/v1/chat/completions', t.key, chat(t.model))).status).toBe(429);
    await timeTravel(t.generation, 60_000);
    for (let i = 0; i < 3; i++) expect((await postJson('/v1/chat/completions', t.key, chat(t.model))).status).toBe(200);
  });

  it('limits a key on its own, without touching the other keys of the tenant', async () => {
    const t = await makeTenant({ requestsPerMinute: 100 });
    const slow = await admin<{ key: string }>('POST', `/tenants/${t.tenantId}/keys`, { requests_per_minute: 2 });
    expect((await postJson('/v1/chat/completions', slow.key, chat(t.model))).status).toBe(200);
    const second = await postJson('/v1/chat/completions', slow.key, chat(t.model));
    expect(second.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect((await postJson('/v1/chat/completions', slow.key, chat(t.model))).status).toBe(429);
    const other = await postJson('/v1/chat/completions', t.key, chat(t.model));
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-limit-requests')).toBe('100');
  });

  it('charges estimated tokens up front and refunds the difference when the response ends', async () => {
    const tag = uniqueTag('tokens');
    const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('gated', tag) }]) };
    const t = await makeTenant({ tokensPerMinute: 1000 });
    const send = (body: unknown) =>
      callWith(vars, '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // Held open by the gated stub: its real usage (8 tokens) is not known yet, so ~606 estimated tokens stay charged.
    const open = await send(chat(t.model, { max_tokens: 600, stream: true }));
    expect(open.status).toBe(200);
    expect(Number(open.headers.get('x-ratelimit-remaining-tokens'))).toBeLessThan(400);
    const refused = await send(chat(t.model, { max_tokens: 600 }));
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('tokens per minute');
    await releaseStub(tag);
    await open.text();
    // The refund happens after the stream ended (waitUntil); then the same request fits again.
    await eventually('the token refund', async () => {
      const res = await send(chat(t.model, { max_tokens: 600 }));
      await res.text();
      return res.status === 200 ? true : null;
    });
  });
});
