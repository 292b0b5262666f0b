/**
 * The request path at scale (issue 20): what one warm request costs in D1 queries, KV operations, Durable Object
 * calls and queue messages — counted by wrapping the bindings in counting proxies (helpers/counted-env.ts), not
 * estimated — and the bounds of the per-isolate read cache (revocation within READ_CACHE_TTL_MS). The counts printed
 * here are the capacity note of worker/README.md. The rate limiter's side of the path: edge-rate-limiter.test.ts.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { forgetHotResponses } from '../src/cache/response-cache.ts';
import { cachedRead, invalidateReadCache, MAX_ENTRIES, readCacheSize } from '../src/db/read-cache.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { ADMIN_TOKEN } from './helpers/http.ts';
import { countedEnv, direct, post, zero, type Counts } from './helpers/counted-env.ts';

describe('the request path of a warm key', () => {
  it('makes no D1 read or write; KV reads, Durable Object calls and queue messages as counted per request kind', async () => {
    const t = await makeTenant();
    const get = { headers: { authorization: `Bearer ${t.key}` } };
    const chat = (extra: Record<string, unknown>) => ({ model: t.model, messages: [{ role: 'user', content: 'hi' }], ...extra });
    const kinds: [string, string, RequestInit][] = [
      ['GET /v1/models', '/v1/models', get],
      ['GET /v1/presets', `/v1/presets?model=${encodeURIComponent(t.model)}`, get],
      ['chat, cache MISS (fills the cache)', '/v1/chat/completions', post(t.key, chat({ temperature: 0, seed: 1 }))],
      ['chat, cache HIT', '/v1/chat/completions', post(t.key, chat({ temperature: 0, seed: 1 }))],
      [
        'chat, cache HIT in an isolate that has not seen the answer',
        '/v1/chat/completions',
        post(t.key, chat({ temperature: 0, seed: 1 })),
      ],
      ['chat, not cacheable (BYPASS)', '/v1/chat/completions', post(t.key, chat({ temperature: 1 }))],
      ['chat, streamed (BYPASS)', '/v1/chat/completions', post(t.key, chat({ temperature: 1, stream: true }))],
    ];
    // warm the read cache: the first request of a key reads D1 (its key row; the context of a model)
    const cold = zero();
    const first = await direct(countedEnv(cold), '/v1/models', get);
    expect(first.res.status).toBe(200);
    expect(cold.d1Reads, 'a cold key reads its key row and its model list').toBe(2);
    await direct(countedEnv(zero()), `/v1/presets?model=${encodeURIComponent(t.model)}`, get);

    const table: Record<string, Counts> = {};
    for (const [name, path, init] of kinds) {
      if (name.includes('has not seen')) forgetHotResponses();
      const counts = zero();
      const { res, text } = await direct(countedEnv(counts), path, init);
      expect(res.status, `${name}: ${text}`).toBe(200);
      table[name] = counts;
    }
    console.log(`per-request counts (request path and its waitUntil work):\n${JSON.stringify(table, null, 1)}`);
    for (const [name, c] of Object.entries(table)) {
      expect(c.d1Reads, `${name}: D1 reads`).toBe(0);
      expect(c.d1Writes, `${name}: D1 writes`).toBe(0);
      expect(c.doCalls, `${name}: Durable Object calls`).toBeLessThanOrEqual(1);
    }
    expect(table['GET /v1/models']).toEqual({ ...zero() });
    expect(table['GET /v1/presets']).toEqual({ ...zero() });
    expect(table['chat, cache MISS (fills the cache)']).toEqual({
      ...zero(),
      kvReads: 1,
      kvWrites: 1,
      doCalls: 1,
      queueMessages: 2,
    });
    expect(table['chat, cache HIT']).toEqual({ ...zero(), doCalls: 1, queueMessages: 1 });
    expect(table['chat, cache HIT in an isolate that has not seen the answer']).toEqual({
      ...zero(),
      kvReads: 1,
      doCalls: 1,
      queueMessages: 1,
    });
    expect(table['chat, not cacheable (BYPASS)']).toEqual({ ...zero(), doCalls: 1, queueMessages: 2 });
    expect(table['chat, streamed (BYPASS)']).toEqual({ ...zero(), doCalls: 1, queueMessages: 2 });
  });

  it('a key revoked in another isolate is refused within READ_CACHE_TTL_MS; revoked through this isolate, at once', async () => {
    const ttlMs = 1000;
    const vars = { READ_CACHE_TTL_MS: String(ttlMs) };
    const t = await makeTenant();
    const get = { headers: { authorization: `Bearer ${t.key}` } };
    expect((await direct(countedEnv(zero(), vars), '/v1/models', get)).res.status).toBe(200);

    // another isolate's admin write: straight to D1, this isolate is not told
    const revokedAt = Date.now();
    await env.DB.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?').bind(revokedAt, t.keyId).run();
    const seen: { startedAfterMs: number; status: number }[] = [];
    for (;;) {
      const started = Date.now();
      const counts = zero();
      const { res } = await direct(countedEnv(counts, vars), '/v1/models', get);
      seen.push({ startedAfterMs: started - revokedAt, status: res.status });
      if (res.status === 401 || started - revokedAt > 3 * ttlMs) break;
      expect(counts.d1Reads, 'served from the read cache').toBe(0);
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`after the revocation (TTL ${ttlMs} ms): ${JSON.stringify(seen)}`);
    // every request that started one TTL after the revocation (or later) is refused
    for (const s of seen) if (s.startedAfterMs >= ttlMs) expect(s.status, JSON.stringify(seen)).toBe(401);
    expect(seen.at(-1)!.status).toBe(401);
    expect(seen[0]!.status, 'the key was served from the cache right after the D1 write (the bound is real)').toBe(200);

    // through the admin API of this isolate: refused on the next request
    const u = await makeTenant();
    const uget = { headers: { authorization: `Bearer ${u.key}` } };
    expect((await direct(countedEnv(zero(), { READ_CACHE_TTL_MS: '600000' }), '/v1/models', uget)).res.status).toBe(200);
    const revoke = await direct(env, `/admin/tenants/${u.tenantId}/keys/${u.keyId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(revoke.res.status).toBe(200);
    const after = await direct(countedEnv(zero(), { READ_CACHE_TTL_MS: '600000' }), '/v1/models', uget);
    expect(after.res.status).toBe(401);
    expect(JSON.parse(after.text)).toMatchObject({ error: { code: 'revoked_api_key' } });
  });
});

describe('the read cache', () => {
  const e = (ttl: string) => ({ ...env, READ_CACHE_TTL_MS: ttl }) as Env;

  it('keeps settled values only (concurrent misses each load), never a failure or a load that an admin write overtook, stays bounded', async () => {
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 20));
      return loads;
    };
    const key = `t:${crypto.randomUUID()}`;
    // a pending load is never handed to another caller (in workerd it would belong to another request)
    expect(await Promise.all([cachedRead(e('60000'), key, load), cachedRead(e('60000'), key, load)])).toEqual([2, 2]);
    expect(loads).toBe(2);
    expect(await cachedRead(e('60000'), key, load)).toBe(2);
    expect(loads, 'a later read is served from the cache').toBe(2);

    // a read whose request went away never settles (workerd cancels its I/O): later callers must not wait on it
    const orphaned = `t:${crypto.randomUUID()}`;
    void cachedRead(e('60000'), orphaned, () => new Promise<string>(() => {}));
    const next = await Promise.race([
      cachedRead(e('60000'), orphaned, async () => 'answered'),
      new Promise((r) => setTimeout(() => r('waited on the orphaned read'), 1000)),
    ]);
    expect(next).toBe('answered');

    const failing = `t:${crypto.randomUUID()}`;
    await expect(cachedRead(e('60000'), failing, () => Promise.reject(new Error('D1 down')))).rejects.toThrow('D1 down');
    expect(await cachedRead(e('60000'), failing, async () => 'fresh')).toBe('fresh');

    // an admin write of this isolate while a read is on its way: that read's (possibly old) value is not kept
    const raced = `t:${crypto.randomUUID()}`;
    const pending = cachedRead(e('60000'), raced, async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 'old';
    });
    invalidateReadCache();
    expect(await pending).toBe('old');
    expect(await cachedRead(e('60000'), raced, async () => 'new')).toBe('new');

    // TTL 0: no cache at all
    let direct = 0;
    for (let i = 0; i < 3; i++) await cachedRead(e('0'), key, async () => ++direct);
    expect(direct).toBe(3);

    for (let i = 0; i < MAX_ENTRIES + 50; i++) await cachedRead(e('60000'), `fill:${i}`, async () => i);
    expect(readCacheSize()).toBe(MAX_ENTRIES);
    invalidateReadCache();
    expect(readCacheSize()).toBe(0);
  });
});
