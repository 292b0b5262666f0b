/**
 * The request path and the rate limiter (issue 20): an unreachable limiter (the tenant's fail mode), and a cache HIT,
 * which reads the cache while the limiter decides and still counts against the limit.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { forgetHotResponses } from '../src/cache/response-cache.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { ADMIN_TOKEN } from './helpers/http.ts';
import { countedEnv, direct, post, zero } from './helpers/counted-env.ts';

describe('an unreachable rate limiter', () => {
  const chat = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 1 });

  it('fails closed by default: 503 rate_limiter_unavailable with Retry-After, nothing sent to a backend or queued', async () => {
    const t = await makeTenant();
    const counts = zero();
    const { res, text } = await direct(countedEnv(counts, {}, true), '/v1/chat/completions', post(t.key, chat(t.model)));
    expect(res.status, text).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'rate_limiter_unavailable', param: null } });
    expect(counts).toMatchObject({ doCalls: 1, queueMessages: 0, d1Writes: 0 });
  });

  it('fails open for a tenant that says so: the request is answered, unmetered (no rate-limit headers)', async () => {
    const t = await makeTenant();
    const patched = await direct(env, `/admin/tenants/${t.tenantId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rate_limit_fail_mode: 'open' }),
    });
    expect(JSON.parse(patched.text)).toMatchObject({ rate_limit_fail_mode: 'open' });
    const counts = zero();
    const { res, text } = await direct(countedEnv(counts, {}, true), '/v1/chat/completions', post(t.key, chat(t.model)));
    expect(res.status, text).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ object: 'chat.completion' });
    expect(res.headers.get('x-ratelimit-limit-requests')).toBeNull();
    expect(counts.doCalls, 'the one failed acquire (the settlement is the consumer’s)').toBe(1);
    expect(counts.queueMessages).toBe(2);

    // a bad fail mode is a 400 naming the field
    const bad = await direct(env, `/admin/tenants/${t.tenantId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rate_limit_fail_mode: 'maybe' }),
    });
    expect(bad.res.status).toBe(400);
    expect(JSON.parse(bad.text)).toMatchObject({ error: { param: 'rate_limit_fail_mode' } });
  });
});

describe('a cache HIT and the rate limiter', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const body = (model: string) => ({ model, messages: [{ role: 'user', content: 'overlap' }], temperature: 0, seed: 7 });

  /** The test env with a limiter whose answers arrive 30 ms late and a KV that logs its reads, in `log` order. */
  function tracedEnv(log: string[]): Env {
    const limiter = new Proxy(env.RATE_LIMITER, {
      get(target, prop) {
        if (prop === 'get')
          return (id: DurableObjectId) =>
            new Proxy(target.get(id), {
              get(s, method) {
                const fn = Reflect.get(s, method) as unknown;
                if (method !== 'acquire' || typeof fn !== 'function') return fn;
                return async (...args: unknown[]) => {
                  log.push('acquire sent');
                  const answer = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
                  await sleep(30);
                  log.push('admitted');
                  return answer;
                };
              },
            });
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const kv = new Proxy(env.CACHE, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (prop === 'get') log.push('cache read');
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { ...env, RATE_LIMITER: limiter, CACHE: kv };
  }

  it('reads the cache while the limiter decides (a cold HIT waits for the longer of the two, not their sum)', async () => {
    const t = await makeTenant();
    const miss = await direct(env, '/v1/chat/completions', post(t.key, body(t.model)));
    expect(miss.res.headers.get('x-realign-cache'), miss.text).toBe('MISS');
    forgetHotResponses();
    const log: string[] = [];
    const hit = await direct(tracedEnv(log), '/v1/chat/completions', post(t.key, body(t.model)));
    expect(hit.res.status, hit.text).toBe(200);
    expect(hit.res.headers.get('x-realign-cache')).toBe('HIT');
    expect(hit.res.headers.get('x-ratelimit-limit-requests')).toBe('1000');
    expect(log, 'the KV read started before the admission came back').toEqual(['acquire sent', 'cache read', 'admitted']);
  });

  it('a refused request is refused even when its answer is cached (the HIT still counts against the limit)', async () => {
    const t = await makeTenant({ requestsPerMinute: 2 });
    const first = await direct(env, '/v1/chat/completions', post(t.key, body(t.model)));
    expect(first.res.headers.get('x-realign-cache'), first.text).toBe('MISS');
    const second = await direct(env, '/v1/chat/completions', post(t.key, body(t.model)));
    expect(second.res.headers.get('x-realign-cache'), second.text).toBe('HIT');
    expect(second.res.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    for (const cold of [false, true]) {
      if (cold) forgetHotResponses();
      const counts = zero();
      const third = await direct(countedEnv(counts), '/v1/chat/completions', post(t.key, body(t.model)));
      expect(third.res.status, third.text).toBe(429);
      expect(third.res.headers.get('x-realign-cache')).toBeNull();
      expect(JSON.parse(third.text)).toMatchObject({ error: { type: 'rate_limit_error' } });
      expect(counts, 'one acquire, no usage for a refused request').toMatchObject({ doCalls: 1, queueMessages: 0 });
    }
  });
});
