/**
 * Several named adapters at the edge (issue 18): a tenant's allow-list and per-adapter λ bounds, stored with its
 * policy through the admin API and enforced before anything is charged or sent; presets naming an adapter or a mix.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/eventually.ts';
import { makeTenant, type TestTenant } from './helpers/fixtures.ts';
import { admin, ADMIN_TOKEN, call, callWith } from './helpers/http.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';

const ADAPTERS = ['concise', 'safe', 'style'];
type ErrorJson = { error: { message: string; type: string; param: string | null; code: string | null } };

describe('adapter policy through HTTP', () => {
  let t: TestTenant;
  let tag: string;
  const send = (body: Record<string, unknown>, path = '/v1/chat/completions') => {
    const content = uniqueTag('msg');
    const full = path.endsWith('logits')
      ? { model: t.model, prompt: content, ...body }
      : { model: t.model, messages: [{ role: 'user', content }], ...body };
    return callWith({ BACKENDS: JSON.stringify([{ url: stubBackend('ok', tag) }]) }, path, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(full),
    }).then((res) => ({ res, content }));
  };
  const seenBody = async (content: string) =>
    (await stubRequests(tag)).find((r) => JSON.stringify(r.body).includes(content))?.body;

  beforeAll(async () => {
    tag = uniqueTag('adapters');
    t = await makeTenant({
      requestsPerMinute: 4,
      policy: {
        allowed_adapters: ['concise', 'safe'],
        adapter_ranges: { safe: { max_lambda: 0.5 }, concise: { min_lambda: -1, max_lambda: 2 } },
      },
      presets: { careful: { lambda: 0.9, sampling: { max_tokens: 9 } }, plain: { lambda: 0.3 } },
    });
    await admin('PUT', `/models/${t.model}`, { adapters: ADAPTERS });
    await admin('PUT', `/tenants/${t.tenantId}/presets/careful`, { lambda: 0.9, sampling: { max_tokens: 9 }, adapter: 'safe' });
    await admin('PUT', `/tenants/${t.tenantId}/presets/blend`, { lambda: 1, mix: { concise: 3, safe: 0.25 } });
    await admin('PUT', `/tenants/${t.tenantId}/presets/styled`, { lambda: 1, adapter: 'style' });
  });

  it('stores and shows the adapter policy, the catalogue adapters and preset adapters/mixes', async () => {
    const policies = await admin<{ data: Record<string, unknown>[] }>('GET', `/tenants/${t.tenantId}/policies`);
    expect(policies.data[0]).toMatchObject({
      model_id: '*',
      allowed_adapters: ['concise', 'safe'],
      adapter_ranges: { safe: { max_lambda: 0.5 }, concise: { min_lambda: -1, max_lambda: 2 } },
    });
    const presets = await admin<{ data: Record<string, unknown>[] }>('GET', `/tenants/${t.tenantId}/presets`);
    expect(presets.data.find((p) => p.name === 'blend')).toMatchObject({ adapter: null, mix: { concise: 3, safe: 0.25 } });
    expect(presets.data.find((p) => p.name === 'careful')).toMatchObject({ adapter: 'safe', mix: null });
    const models = await call('/v1/models', { headers: { authorization: `Bearer ${t.key}` } });
    expect(((await models.json()) as { data: Record<string, unknown>[] }).data[0]).toMatchObject({ adapters: ADAPTERS });
  });

  it('GET /v1/presets lists the adapters the tenant may use with their ranges, and presets with their adapter or mix', async () => {
    const res = await call(`/v1/presets?model=${t.model}`, { headers: { authorization: `Bearer ${t.key}` } });
    const json = (await res.json()) as { adapters: unknown[]; data: Record<string, unknown>[] };
    expect(json.adapters).toEqual([
      { name: 'concise', allowed: true, lambda_range: { min: -1, max: 2 } },
      { name: 'safe', allowed: true, lambda_range: { min: 0, max: 0.5 } },
      { name: 'style', allowed: false, lambda_range: { min: 0, max: 1 } },
    ]);
    expect(json.data.find((p) => p.name === 'careful')).toMatchObject({ adapter: 'safe', lambda: 0.5, clamped: true });
    expect(json.data.find((p) => p.name === 'blend')).toMatchObject({ mix: { concise: 2, safe: 0.25 }, clamped: true });
    expect(json.data.find((p) => p.name === 'plain')).not.toHaveProperty('adapter');
  });

  it('refuses a forbidden adapter (403 naming the field) and a λ outside its bounds, charging and sending nothing', async () => {
    const refused = [
      await send({ adapter: 'style', lambda: 0.5 }),
      await send({ mix: { concise: 0.5, style: 0.2 } }),
      await send({ preset: 'styled' }),
      await send({ adapter: 'safe', lambda: 0.7 }),
      await send({ mix: { concise: 1.5, safe: 0.6 } }),
      await send({ adapter: 'style', lambdas: [0, 1] }, '/v1/logits'),
    ];
    const errors = await Promise.all(
      refused.map(async ({ res }) => ({ status: res.status, ...((await res.json()) as ErrorJson).error })),
    );
    expect(errors.map((e) => [e.status, e.type, e.code, e.param])).toEqual([
      [403, 'permission_error', 'adapter_not_allowed', 'adapter'],
      [403, 'permission_error', 'adapter_not_allowed', 'mix.style'],
      [403, 'permission_error', 'adapter_not_allowed', 'adapter'],
      [400, 'invalid_request_error', 'lambda_out_of_range', 'lambda'],
      [400, 'invalid_request_error', 'lambda_out_of_range', 'mix.safe'],
      [403, 'permission_error', 'adapter_not_allowed', 'adapter'],
    ]);
    expect(errors[2]!.message).toContain('preset "styled"');
    for (const { res } of refused) expect(res.headers.get('x-ratelimit-remaining-requests')).toBeNull();
    for (const { content } of refused) expect(await seenBody(content)).toBeUndefined();

    // four requests per minute: had any refusal been charged, one of these would be a 429
    const ok = [
      await send({ adapter: 'concise', lambda: 1.8 }), // concise's own range [-1, 2] is wider than [0, 1]
      await send({ mix: { concise: -0.5, safe: 0.5 } }),
      await send({ preset: 'careful' }),
      await send({ preset: 'blend' }),
    ];
    expect(ok.map(({ res }) => res.status)).toEqual([200, 200, 200, 200]);
    expect(ok[0]!.res.headers.get('x-ratelimit-remaining-requests')).toBe('3');
    expect(await seenBody(ok[0]!.content)).toMatchObject({ adapter: 'concise', lambda: 1.8 });
    expect(await seenBody(ok[1]!.content)).toMatchObject({ mix: { concise: -0.5, safe: 0.5 } });
    // a preset's adapter travels in the body, its λ clamped into the adapter's range; its mix the same way
    expect(await seenBody(ok[2]!.content)).toMatchObject({ adapter: 'safe', lambda: 0.5, max_tokens: 9 });
    expect(ok[2]!.res.headers.get('x-realign-lambda-clamped')).toBe('true');
    const blend = await seenBody(ok[3]!.content);
    expect(blend).toMatchObject({ mix: { concise: 2, safe: 0.25 } });
    expect(blend).not.toHaveProperty('lambda');
  });

  it("the model's default adapter obeys the allow-list when the catalogue names it", async () => {
    const u = await makeTenant({ policy: { allowed_adapters: ['safe'] } });
    const plain = (key: string, model: string) =>
      call('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], lambda: 0.5 }),
      });
    // without the catalogue's adapters the edge cannot tell which adapter a plain λ runs on
    expect((await plain(u.key, u.model)).status).toBe(200);
    await admin('PUT', `/models/${u.model}`, { adapters: ['concise', 'safe'] });
    const res = await plain(u.key, u.model);
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorJson).error).toMatchObject({ code: 'adapter_not_allowed', param: 'adapter' });
  });

  it("a model's own row overrides the tenant's allow-list and bounds; an empty adapter range is refused", async () => {
    await admin('PUT', `/tenants/${t.tenantId}/policies/${t.model}`, {
      allowed_adapters: ['style'],
      adapter_ranges: { style: { min_lambda: 0.2 } },
    });
    try {
      const low = await send({ adapter: 'style', lambda: 0.1 });
      expect(((await low.res.json()) as ErrorJson).error).toMatchObject({ code: 'lambda_out_of_range', param: 'lambda' });
      const concise = await send({ adapter: 'concise', lambda: 0.1 });
      expect(((await concise.res.json()) as ErrorJson).error).toMatchObject({ code: 'adapter_not_allowed' });
      const empty = await call(`/admin/tenants/${t.tenantId}/policies/*`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ max_lambda: 0.1 }),
      });
      // style's own min 0.2 over the merged max 0.1
      expect(empty.status).toBe(400);
      const e = ((await empty.json()) as ErrorJson).error;
      expect(e).toMatchObject({ code: 'empty_lambda_range', param: 'max_lambda' });
      expect(e.message).toContain('adapter `style`');
    } finally {
      await admin('DELETE', `/tenants/${t.tenantId}/policies/${t.model}`);
    }
  });

  it('a request on a mix says its mix in x-realign-mix (no single x-realign-lambda), on a MISS and a HIT; logits say both', async () => {
    const u = await makeTenant({ policy: { out_of_range: 'clamp', adapter_ranges: { safe: { max_lambda: 0.5 } } } });
    await admin('PUT', `/models/${u.model}`, { default_lambda: 0.3, adapters: ADAPTERS });
    await admin('PUT', `/tenants/${u.tenantId}/presets/blend`, { lambda: 0.9, mix: { concise: 0.7, safe: 0.8 } });
    const ask = (body: Record<string, unknown>, path = '/v1/chat/completions') =>
      callWith({ BACKENDS: JSON.stringify([{ url: stubBackend('ok', tag) }]) }, path, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: u.model, ...body }),
      });
    const heads = (res: Response) => [res.status, res.headers.get('x-realign-lambda'), res.headers.get('x-realign-mix')];
    const chat = { messages: [{ role: 'user', content: uniqueTag('mixed') }], temperature: 0 };
    // the request's mix, clamped under the policy (safe's bound), as the edge sends it; the same on the cached answer
    const miss = await ask({ ...chat, mix: { safe: 0.9, concise: 0.25 } });
    expect(heads(miss)).toEqual([200, null, 'safe=0.5,concise=0.25']);
    expect(miss.headers.get('x-realign-lambda-clamped')).toBe('true');
    // the MISS stores its answer after the response (waitUntil)
    const hit = await eventually('a cache HIT', async () => {
      const res = await ask({ ...chat, mix: { safe: 0.9, concise: 0.25 } });
      if (res.headers.get('x-realign-cache') === 'HIT') return res;
      await res.body?.cancel();
      return null;
    });
    expect(heads(hit)).toEqual([200, null, 'safe=0.5,concise=0.25']);
    // a preset's mix likewise; a λ on one adapter is a single λ
    expect(heads(await ask({ ...chat, preset: 'blend' }))).toEqual([200, null, 'concise=0.7,safe=0.5']);
    expect(heads(await ask({ ...chat, adapter: 'concise', lambda: 0.4 }))).toEqual([200, '0.4', null]);
    expect(heads(await ask({ ...chat }))).toEqual([200, '0.3', null]);
    // logits: the λ values' results, then the mix's
    const logits = await ask({ prompt: 'x', lambdas: [0, 1], mix: { concise: 0.5, safe: 0.25 } }, '/v1/logits');
    expect(heads(logits)).toEqual([200, '0,1', 'concise=0.5,safe=0.25']);
  });

  it('admin input: adapter names, bounds and preset mixes are validated', async () => {
    const put = (path: string, body: unknown) =>
      call(`/admin/tenants/${t.tenantId}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const cases: [string, unknown, string][] = [
      ['/policies/*', { allowed_adapters: ['Bad Name'] }, 'allowed_adapters[0]'],
      ['/policies/*', { allowed_adapters: ['safe', 'safe'] }, 'allowed_adapters'],
      ['/policies/*', { adapter_ranges: { safe: { min_lambda: 1, max_lambda: 0 } } }, 'adapter_ranges.safe.min_lambda'],
      ['/policies/*', { adapter_ranges: { safe: { lo: 1 } } }, 'adapter_ranges.safe.lo'],
      ['/presets/x', { lambda: 1, adapter: 'safe', mix: { safe: 1 } }, 'adapter'],
      ['/presets/x', { lambda: 1, mix: { safe: 'high' } }, 'mix.safe'],
    ];
    for (const [path, body, param] of cases) {
      const res = await put(path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorJson).error.param, JSON.stringify(body)).toBe(param);
    }
  });
});
