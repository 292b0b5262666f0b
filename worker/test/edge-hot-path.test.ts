/**
 * The request path at scale (issue 20): what one warm request costs in D1 queries, KV operations, Durable Object
 * calls and queue messages — counted by wrapping the bindings in counting proxies, not estimated — and the bounds
 * of the per-isolate read cache (revocation within READ_CACHE_TTL_MS) and of an unreachable rate limiter (the
 * tenant's fail mode). The counts printed here are the capacity note of worker/README.md.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { forgetHotResponses } from '../src/cache/response-cache.ts';
import { cachedRead, invalidateReadCache, MAX_ENTRIES, readCacheSize } from '../src/db/read-cache.ts';
import worker from '../src/index.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { ADMIN_TOKEN, ORIGIN } from './helpers/http.ts';

interface Counts {
  d1Reads: number;
  d1Writes: number;
  kvReads: number;
  kvWrites: number;
  doCalls: number;
  queueMessages: number;
}

const zero = (): Counts => ({ d1Reads: 0, d1Writes: 0, kvReads: 0, kvWrites: 0, doCalls: 0, queueMessages: 0 });

/** A D1 binding that counts every statement it runs: SELECTs as reads, anything else as writes. */
function countingD1(db: D1Database, counts: Counts): D1Database {
  const count = (sql: string) => {
    if (/^\s*(SELECT|WITH)\b/i.test(sql)) counts.d1Reads++;
    else counts.d1Writes++;
  };
  const sqlOf = new WeakMap<object, string>();
  const wrapStatement = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy: D1PreparedStatement = new Proxy(stmt, {
      get(target, prop) {
        if (prop === 'bind') return (...args: unknown[]) => wrapStatement(target.bind(...args), sql);
        if (prop === 'first' || prop === 'all' || prop === 'run' || prop === 'raw')
          return (...args: unknown[]) => {
            count(sql);
            return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    sqlOf.set(proxy, sql);
    return proxy;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrapStatement(target.prepare(sql), sql);
      if (prop === 'batch')
        return (stmts: D1PreparedStatement[]) => {
          for (const s of stmts) count(sqlOf.get(s) ?? 'WRITE');
          // the real statements behind the proxies
          return target.batch(stmts.map((s) => (s as unknown as { valueOf(): D1PreparedStatement }).valueOf()));
        };
      if (prop === 'exec')
        return (sql: string) => {
          count(sql);
          return target.exec(sql);
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function countingKv(kv: KVNamespace, counts: Counts): KVNamespace {
  return new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'get' || prop === 'getWithMetadata' || prop === 'list') counts.kvReads++;
        else if (prop === 'put' || prop === 'delete') counts.kvWrites++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function countingQueue(queue: Queue, counts: Counts): Queue {
  return new Proxy(queue, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'send') counts.queueMessages++;
        if (prop === 'sendBatch') counts.queueMessages += (args[0] as unknown[]).length;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A Durable Object namespace whose stubs count every RPC call (`broken`: every call throws, as if unreachable). */
function countingLimiter(ns: Env['RATE_LIMITER'], counts: Counts, broken = false): Env['RATE_LIMITER'] {
  return new Proxy(ns, {
    get(target, prop) {
      if (prop === 'get')
        return (id: DurableObjectId) => {
          const stub = target.get(id);
          return new Proxy(stub, {
            get(s, method) {
              const fn = Reflect.get(s, method) as unknown;
              if (typeof fn !== 'function' || method === 'then') return fn;
              return (...args: unknown[]) => {
                counts.doCalls++;
                if (broken) return Promise.reject(new Error('Durable Object unreachable (test)'));
                // an RPC method is called as it is (its `apply` would be an RPC call of a method named "apply")
                return (fn as (...a: unknown[]) => unknown)(...args);
              };
            },
          });
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The test env with every storage binding counted (and `vars` replaced). */
function countedEnv(counts: Counts, vars: Partial<Record<keyof Env, string>> = {}, brokenLimiter = false): Env {
  return {
    ...env,
    ...vars,
    DB: countingD1(env.DB, counts),
    CACHE: countingKv(env.CACHE, counts),
    USAGE_QUEUE: countingQueue(env.USAGE_QUEUE, counts),
    RATE_LIMITER: countingLimiter(env.RATE_LIMITER, counts, brokenLimiter),
  };
}

/** One request through the worker's fetch handler with `e`, its body read whole and its waitUntil work awaited. */
async function direct(e: Env, path: string, init: RequestInit = {}): Promise<{ res: Response; text: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, init), e, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, text };
}

const post = (key: string, body: unknown) => ({
  method: 'POST',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

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
