/**
 * One request, or one tenant's past, must not hurt anyone (issue 13 items 2, 3, 5, 6, 9, 10, 11 and issue 15
 * item 8, the edge's side): nothing is charged before a request is valid, a charge larger than a bucket is refused
 * instead of banked as debt, a re-created tenant id starts with nothing of its predecessor, admin deletes answer
 * what they did, a λ policy can never become an empty range, ids are plain, the backend's model list is never
 * relayed, a key can be bound to one user, and the usage row's id is the edge's own.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, ADMIN_TOKEN, call, callWith, postJson } from './helpers/http.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';
import { eventually } from './helpers/eventually.ts';

const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});
const adminCall = (method: string, path: string, body?: unknown) =>
  call(`/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const errorOf = async (res: Response) =>
  ((await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } }).error;
const remaining = (res: Response, dim: 'requests' | 'tokens') => Number(res.headers.get(`x-ratelimit-remaining-${dim}`));

describe('charge after validation (issue 13 item 2)', () => {
  it('charges nothing for requests refused by the model grant, the preset, the λ policy or the user header', async () => {
    const t = await makeTenant({ requestsPerMinute: 3, tokensPerMinute: 5000, presets: { quick: { lambda: 0.5 } } });
    const refused = [
      await postJson('/v1/chat/completions', t.key, chat('no-such-model', { max_tokens: 4000 })),
      await postJson('/v1/chat/completions', t.key, chat(t.model, { preset: 'missing', max_tokens: 4000 })),
      await postJson('/v1/chat/completions', t.key, chat(t.model, { lambda: 7, max_tokens: 4000 })),
      await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 4000 }), { 'x-realign-user': 'has spaces' }),
      await postJson('/v1/logits', t.key, { model: 'no-such-model', prompt: 'x', lambdas: [0, 1] }),
    ];
    expect(refused.map((r) => r.status)).toEqual([404, 400, 400, 400, 404]);
    // three requests per minute: if any refusal had been charged, the third of these would be a 429
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 10 })));
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(remaining(ok[0]!, 'requests')).toBe(2);
    expect(remaining(ok[0]!, 'tokens')).toBeGreaterThan(5000 - 100);
  });

  it('refuses max_tokens beyond the edge bound (400 naming it) and the tenant is not locked out afterwards', async () => {
    const t = await makeTenant({ tokensPerMinute: 10_000 });
    const huge = await postJson('/v1/chat/completions', t.key, chat('no-such-model', { max_tokens: 9007199254740991 }));
    expect(huge.status).toBe(400);
    expect(await errorOf(huge)).toMatchObject({ param: 'max_tokens', type: 'invalid_request_error' });
    const next = await postJson('/v1/chat/completions', t.key, chat(t.model));
    expect(next.status).toBe(200);
    expect(next.headers.get('retry-after')).toBeNull();
  });

  it('refuses a request that costs more than a whole bucket instead of banking the debt', async () => {
    const t = await makeTenant({ tokensPerMinute: 1000 });
    const big = await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 5000 }));
    expect(big.status).toBe(400);
    const e = await errorOf(big);
    expect(e.code).toBe('exceeds_token_limit');
    expect(e.message).toContain('1000');
    const small = await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 10 }));
    expect(small.status).toBe(200);
    expect(remaining(small, 'tokens')).toBeGreaterThan(900);
    // a key's own, smaller bucket is checked the same way
    const k = await admin<{ key: string }>('POST', `/tenants/${t.tenantId}/keys`, { tokens_per_minute: 100 });
    const overKey = await postJson('/v1/chat/completions', k.key, chat(t.model, { max_tokens: 200 }));
    expect(overKey.status).toBe(400);
    expect((await errorOf(overKey)).message).toContain('100');
  });
});

describe('charges capped by the model context (issue 13 item 2)', () => {
  it('with the catalogue context known, refuses a max_tokens that cannot fit and caps the charge of a preset max_tokens', async () => {
    const t = await makeTenant({ tokensPerMinute: 1000, presets: { deep: { lambda: 0.5, sampling: { max_tokens: 2048 } } } });
    await admin('PUT', `/models/${t.model}`, { context_length: 256 });
    expect(
      (await admin<{ data: { id: string; context_length: number | null }[] }>('GET', `/tenants/${t.tenantId}/models`)).data[0]!
        .context_length,
    ).toBe(256);
    const never = await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 300 }));
    expect(never.status).toBe(400);
    expect(await errorOf(never)).toMatchObject({ param: 'max_tokens', code: 'context_length_exceeded' });
    // 2048 tokens would exceed the 1000-token bucket; what the context allows (< 256) does not
    const deep = await postJson('/v1/chat/completions', t.key, chat(t.model, { preset: 'deep' }));
    expect(deep.status).toBe(200);
    expect(remaining(deep, 'tokens')).toBeGreaterThanOrEqual(1000 - 256);
    expect(never.headers.get('x-ratelimit-remaining-tokens'), 'the refusal came before the rate limiter').toBeNull();
  });
});

describe('rejected work still costs its sender (issue 13 item 9, edge part)', () => {
  it('keeps the prompt estimate charged when the backend refuses the request after reading it', async () => {
    const tag = uniqueTag('reject400');
    const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('reject400', tag) }]) };
    const C = 200_000;
    const t = await makeTenant({ tokensPerMinute: C });
    // ≈ 0.3 C estimated prompt tokens and 0.6 C of max_tokens: settling refunds the max_tokens part only
    const prompt = 'x'.repeat(0.3 * C * 4);
    const res = await callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: prompt }], max_tokens: 0.6 * C }),
    });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'context_length_exceeded' });
    expect((await usageRowOf(res.headers.get('x-request-id')!)).status).toBe(400);
    // before settling, about 0.1 C is left (refill needs 24 s to reach 0.5 C); after it, about 0.7 C
    const left = await eventually(
      'the settled charge',
      async () => {
        const after = await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 1 }));
        await after.text();
        const l = remaining(after, 'tokens');
        return l > 0.5 * C ? l : null;
      },
      10_000,
    );
    expect(left, 'the prompt estimate stays charged').toBeLessThan(0.85 * C);
  });
});

describe('tenant ids reused (issue 13 item 5)', () => {
  it('a re-created tenant sees no cache entry, usage row or rate-limit state of the deleted one', async () => {
    const id = uniqueTag('reborn');
    const model = uniqueTag('model');
    await admin('PUT', `/models/${model}`, {});
    const create = async () => {
      const { generation } = await admin<{ generation: string }>('POST', '/tenants', {
        id,
        name: id,
        requests_per_minute: 2,
        cache_ttl_seconds: 600,
      });
      await admin('PUT', `/tenants/${id}/models/${model}`);
      return { key: (await admin<{ key: string }>('POST', `/tenants/${id}/keys`, {})).key, generation };
    };
    const { key: first, generation } = await create();
    const body = chat(model, { temperature: 0, messages: [{ role: 'user', content: `same question ${id}` }] });
    const a = await postJson('/v1/chat/completions', first, body);
    const aJson = (await a.json()) as { id: string };
    expect(a.headers.get('x-realign-cache')).toBe('MISS');
    // the cache entry is written after the answer, under the tenant's generation
    await eventually('the cache entry', async () =>
      (await env.CACHE.list({ prefix: `resp:v2:${generation}:` })).keys.length > 0 ? true : null,
    );
    const hit = await postJson('/v1/chat/completions', first, body);
    expect(hit.headers.get('x-realign-cache')).toBe('HIT');
    expect(((await hit.json()) as { id: string }).id).toBe(aJson.id);
    expect((await postJson('/v1/chat/completions', first, body)).status, 'two requests per minute are spent').toBe(429);
    await eventually('usage rows of the first tenant', async () => {
      const report = await admin<{ data: { requests: number }[] }>('GET', `/usage?tenant=${id}`);
      return report.data[0]?.requests ? true : null;
    });

    expect(await admin('DELETE', `/tenants/${id}`)).toEqual({ id, deleted: true });
    const { key: second, generation: next } = await create();
    expect(next).not.toBe(generation);
    const report = await admin<{ data: unknown[] }>('GET', `/usage?tenant=${id}`);
    expect(report.data, 'no usage rows of the deleted tenant').toEqual([]);
    const b = await postJson('/v1/chat/completions', second, body);
    expect(b.status, 'the new tenant has its own rate limits').toBe(200);
    expect(b.headers.get('x-realign-cache'), 'the new tenant has its own cache').toBe('MISS');
    expect(((await b.json()) as { id: string }).id).not.toBe(aJson.id);
    expect(remaining(b, 'requests')).toBe(1);
  });
});

describe('admin deletes answer what they did (issue 13 item 6)', () => {
  it('DELETE of a tenant with keys and grants, and of a model with grants, answers 200 and deletes', async () => {
    const t = await makeTenant();
    const model = await adminCall('DELETE', `/models/${t.model}`);
    expect(model.status).toBe(200);
    expect(await model.json()).toEqual({ id: t.model, deleted: true });
    expect((await adminCall('DELETE', `/models/${t.model}`)).status, 'a second delete finds nothing').toBe(404);
    const tenant = await adminCall('DELETE', `/tenants/${t.tenantId}`);
    expect(tenant.status).toBe(200);
    expect(await tenant.json()).toEqual({ id: t.tenantId, deleted: true });
    expect((await adminCall('DELETE', `/tenants/${t.tenantId}`)).status).toBe(404);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = ?').bind(t.tenantId).first('n')).toBe(0);
  });
});

describe('λ policies never become an empty range (issue 13 item 10)', () => {
  it('refuses every write that would leave a model with min_lambda > max_lambda, in either order', async () => {
    const t = await makeTenant();
    expect((await adminCall('PUT', `/tenants/${t.tenantId}/policies/*`, { max_lambda: 0.8 })).status).toBe(200);
    const model = await adminCall('PUT', `/tenants/${t.tenantId}/policies/${t.model}`, { min_lambda: 0.9 });
    expect(model.status).toBe(400);
    expect(await errorOf(model)).toMatchObject({ code: 'empty_lambda_range', param: 'min_lambda' });

    const u = await makeTenant();
    expect((await adminCall('PUT', `/tenants/${u.tenantId}/policies/${u.model}`, { min_lambda: 0.9 })).status).toBe(200);
    const star = await adminCall('PUT', `/tenants/${u.tenantId}/policies/*`, { max_lambda: 0.8 });
    expect(star.status).toBe(400);
    expect(await errorOf(star)).toMatchObject({ code: 'empty_lambda_range', param: 'max_lambda' });
    expect(
      (await errorOf(await adminCall('PUT', `/tenants/${u.tenantId}/policies/${u.model}`, { min_lambda: 1.5 }))).code,
      'against the built-in max of 1',
    ).toBe('empty_lambda_range');

    // deleting a row can empty a range too: the model's min 1.5 only fits under the tenant-wide max 2
    const v = await makeTenant();
    expect((await adminCall('PUT', `/tenants/${v.tenantId}/policies/*`, { max_lambda: 2 })).status).toBe(200);
    expect((await adminCall('PUT', `/tenants/${v.tenantId}/policies/${v.model}`, { min_lambda: 1.5 })).status).toBe(200);
    const del = await adminCall('DELETE', `/tenants/${v.tenantId}/policies/*`);
    expect(del.status).toBe(400);
    expect(await errorOf(del)).toMatchObject({ code: 'empty_lambda_range' });
    // and the request path still works with the range that was kept
    const ok = await postJson('/v1/chat/completions', v.key, chat(v.model, { lambda: 1.7 }));
    expect(ok.status).toBe(200);
  });
});

describe('smaller edge items (issue 13 item 11)', () => {
  it('answers its own 404 for a granted model the backend does not serve, never the backend list', async () => {
    const tag = uniqueTag('nomodel');
    const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('nomodel', tag) }]) };
    const t = await makeTenant();
    const res = await callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(chat(t.model)),
    });
    expect(res.status).toBe(404);
    const e = await errorOf(res);
    expect(e).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(e.message).toContain(t.model);
    expect(e.message).not.toContain('private-model');
    expect(await stubRequests(tag)).toHaveLength(1);
  });

  it('restricts tenant, model, user and key-name ids to a plain alphabet without `..`', async () => {
    for (const id of ['a/b', 'ok/../dev', 'a..b', 'Upper', '-lead', 'x'.repeat(65), 'sp ace']) {
      const res = await adminCall('POST', '/tenants', { id, name: 'x' });
      expect(res.status, id).toBe(400);
      expect((await errorOf(res)).param, id).toBe('id');
    }
    expect((await adminCall('GET', '/tenants/ok%2F..%2Fdev')).status).toBe(400);
    expect((await adminCall('PUT', '/models/a..b', {})).status).toBe(400);
    const t = await makeTenant();
    expect((await adminCall('PUT', `/tenants/${t.tenantId}/users/a..b/preferences`, { lambda: 0.5 })).status).toBe(400);
    expect((await adminCall('POST', `/tenants/${t.tenantId}/keys`, { name: '<script>' })).status).toBe(400);
    expect((await adminCall('PUT', `/tenants/${t.tenantId}/presets/a..b`, { lambda: 0.5 })).status).toBe(400);
    // a tenant of the older alphabet (inserted before the restriction) can still be deleted, and gets a generation
    const legacy = `Legacy:${uniqueTag('x')}`;
    await env.DB.prepare('INSERT INTO tenants (id, name, created_at) VALUES (?, ?, 0)').bind(legacy, 'old').run();
    expect(await env.DB.prepare('SELECT generation FROM tenants WHERE id = ?').bind(legacy).first('generation')).toMatch(
      /^[0-9a-f]{32}$/,
    );
    expect((await adminCall('GET', `/tenants/${legacy}`)).status).toBe(400);
    expect((await adminCall('DELETE', `/tenants/${legacy}`)).status).toBe(200);
  });

  it('lets a tenant bind a key to one user: other users are refused, and an absent user is the bound one', async () => {
    const t = await makeTenant({ presets: { quick: { lambda: 0.25 } } });
    await admin('PUT', `/tenants/${t.tenantId}/users/alice/preferences`, { lambda: 0.75 });
    await admin('PUT', `/tenants/${t.tenantId}/users/bob/preferences`, { lambda: 0.1 });
    const bound = await admin<{ key: string; user: string }>('POST', `/tenants/${t.tenantId}/keys`, {
      name: 'alice app',
      user: 'alice',
    });
    expect(bound.user).toBe('alice');
    const asBob = await postJson('/v1/chat/completions', bound.key, chat(t.model, { user: 'bob' }));
    expect(asBob.status).toBe(403);
    expect(await errorOf(asBob)).toMatchObject({ code: 'user_not_allowed', param: 'user' });
    const asBobHeader = await postJson('/v1/chat/completions', bound.key, chat(t.model), { 'x-realign-user': 'bob' });
    expect(asBobHeader.status).toBe(403);
    const implicit = await postJson('/v1/chat/completions', bound.key, chat(t.model));
    expect(implicit.status).toBe(200);
    expect(implicit.headers.get('x-realign-lambda')).toBe('0.75');
    expect(implicit.headers.get('x-realign-lambda-source')).toBe('user');
    const explicitAlice = await postJson('/v1/chat/completions', bound.key, chat(t.model, { user: 'alice' }));
    expect(explicitAlice.status).toBe(200);
    // an unbound key may still act as any user of its tenant (documented)
    const free = await postJson('/v1/chat/completions', t.key, chat(t.model, { user: 'bob' }));
    expect(free.headers.get('x-realign-lambda')).toBe('0.1');
  });

  it('generates the usage row id itself and keeps the client x-request-id as a separate field', async () => {
    const t = await makeTenant();
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await postJson('/v1/chat/completions', t.key, chat(t.model), { 'x-request-id': 'client-42' });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
      expect(res.headers.get('x-client-request-id')).toBe('client-42');
      ids.push(res.headers.get('x-request-id')!);
      await res.text();
    }
    expect(ids[0]).not.toBe(ids[1]);
    for (const id of ids) expect((await usageRowOf(id)).client_request_id).toBe('client-42');
  });
});

describe('/v1/logits answer size at the edge (issue 13 item 3, edge part)', () => {
  it('refuses an answer over the bound with a 400 naming the fields, before the backend or the limiter', async () => {
    const tag = uniqueTag('logits-big');
    const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('ok', tag) }]) };
    const t = await makeTenant({ policy: { min_lambda: -2, max_lambda: 2 } });
    const lambdas = Array.from({ length: 32 }, (_, i) => -1 + i / 16);
    const body = {
      model: t.model,
      input_ids: Array.from({ length: 1000 }, (_, i) => i),
      positions: 'all',
      top_logprobs: 100,
      lambdas,
      include_branches: true,
    };
    const res = await callWith(vars, '/v1/logits', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    const e = await errorOf(res);
    expect(e.code).toBe('logits_answer_too_large');
    for (const field of ['positions', 'top_logprobs', 'lambdas', 'include_branches']) expect(e.message).toContain(field);
    expect(await stubRequests(tag)).toHaveLength(0);
  });

  it('charges a logits request by the size of its answer (positions × λ values × top_logprobs)', async () => {
    const C = 100_000;
    const t = await makeTenant({ tokensPerMinute: C });
    const body = {
      model: t.model,
      input_ids: Array.from({ length: 200 }, (_, i) => i),
      positions: 'all',
      top_logprobs: 50,
      lambdas: [0, 0.25, 0.5, 1],
    };
    const res = await postJson('/v1/logits', t.key, body);
    expect(res.status).toBe(200);
    // 200 positions × 4 λ × 50 = 40,000 entries, on top of 200 prompt tokens
    expect(remaining(res, 'tokens')).toBeLessThanOrEqual(C - 40_000);
    await usageRowOf(res.headers.get('x-request-id')!);
    await new Promise((r) => setTimeout(r, 200));
    // after settling with the backend's usage (3 prompt tokens), the answer's size stays charged (refill: C / 60 per s)
    const after = await postJson('/v1/chat/completions', t.key, chat(t.model, { max_tokens: 1 }));
    expect(remaining(after, 'tokens')).toBeLessThan(C - 20_000);
  });
});

describe('preset max_tokens and the context (issue 15 item 8)', () => {
  it('caps a preset max_tokens to the context left; an explicit one over the limit is still a 400', async () => {
    const tag = uniqueTag('ctx');
    const vars = { BACKENDS: JSON.stringify([{ url: stubBackend('ctx256', tag) }]) };
    const t = await makeTenant({ presets: { deep: { lambda: 0.5, sampling: { max_tokens: 2048 } } } });
    const send = (body: unknown) =>
      callWith(vars, '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const content = 'y'.repeat(400); // 100 tokens for the stub
    const viaPreset = await send({ model: t.model, messages: [{ role: 'user', content }], preset: 'deep' });
    expect(viaPreset.status).toBe(200);
    const served = (await stubRequests(tag)).at(-1)!;
    expect(served.body.max_tokens).toBe(156);
    const streamed = await send({ model: t.model, messages: [{ role: 'user', content }], preset: 'deep', stream: true });
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('[DONE]');
    const explicit = await send({ model: t.model, messages: [{ role: 'user', content }], preset: 'deep', max_tokens: 2048 });
    expect(explicit.status).toBe(400);
    expect(await errorOf(explicit)).toMatchObject({ param: 'max_tokens', code: 'context_length_exceeded' });
  });
});
