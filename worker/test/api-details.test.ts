/**
 * API details an OpenAI client notices, at the edge inside workerd: `GET /v1/models/{id}` (the SDKs'
 * `models.retrieve`), tenant-scoped; 405 with `Allow` and OpenAI's error JSON for a wrong method on any route;
 * stream chunks without a `usage` field unless `stream_options.include_usage` was asked (the edge always asks the
 * backend for usage); and a CORS preflight that allows the request headers the browser asks for (OpenAI's JS SDK
 * sends `x-stainless-*`), never credentials.
 */
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { ADMIN_TOKEN, call, callWith } from './helpers/http.ts';
import { readSse } from './helpers/sse.ts';
import { stubBackend, uniqueTag } from './helpers/stub.ts';

type ErrorJson = { error: { message: string; type: string; param: string | null; code: string | null } };

async function errorOf(res: Response): Promise<ErrorJson['error']> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as ErrorJson;
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

describe('GET /v1/models/{id}', () => {
  it('answers one of the tenant’s models as OpenAI’s model object, the same as in the list', async () => {
    const t = await makeTenant({ modelDefaultLambda: 0.75 });
    const auth = { authorization: `Bearer ${t.key}` };
    const res = await call(`/v1/models/${t.model}`, { headers: auth });
    expect(res.status).toBe(200);
    const model = (await res.json()) as Record<string, unknown>;
    expect(model).toMatchObject({ id: t.model, object: 'model', owned_by: 'realign', default_lambda: 0.75 });
    expect(Number.isInteger(model.created)).toBe(true);
    const list = (await (await call('/v1/models', { headers: auth })).json()) as { data: unknown[] };
    expect(list.data).toEqual([model]);
  });

  it('is a 404 for a model of another tenant and for an unknown one alike, and a 401 without a key', async () => {
    const t = await makeTenant();
    const other = await makeTenant();
    const auth = { authorization: `Bearer ${t.key}` };
    const errors = [];
    for (const id of [other.model, uniqueTag('no-such-model')]) {
      const res = await call(`/v1/models/${id}`, { headers: auth });
      expect(res.status, id).toBe(404);
      const e = await errorOf(res);
      expect(e).toMatchObject({ code: 'model_not_found', param: 'model' });
      errors.push(e.message.replace(id, '<id>'));
    }
    expect(errors[0]).toBe(errors[1]);
    const anonymous = await call(`/v1/models/${t.model}`);
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();
  });
});

describe('a wrong method on a route', () => {
  it('is a 405 with Allow and an OpenAI error body on /v1, /admin and the health routes; an unknown path stays a 404', async () => {
    const t = await makeTenant();
    const key = { authorization: `Bearer ${t.key}` };
    const adminKey = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const cases: [string, string, Record<string, string>, string][] = [
      ['GET', '/v1/chat/completions', key, 'POST'],
      ['DELETE', '/v1/completions', key, 'POST'],
      ['PUT', '/v1/logits', key, 'POST'],
      ['POST', '/v1/models', key, 'GET'],
      ['DELETE', `/v1/models/${t.model}`, key, 'GET'],
      ['POST', '/healthz', {}, 'GET'],
      ['PATCH', '/admin/models', adminKey, 'GET'],
      ['GET', `/admin/models/${t.model}`, adminKey, 'PUT, DELETE'],
      ['POST', `/admin/tenants/${t.tenantId}`, adminKey, 'GET, PATCH, DELETE'],
    ];
    for (const [method, path, headers, allow] of cases) {
      const res = await call(path, { method, headers });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(res.headers.get('x-request-id'), `${method} ${path}`).toMatch(/^req_/);
      const e = await errorOf(res);
      expect(e, `${method} ${path}`).toMatchObject({ type: 'invalid_request_error', code: 'method_not_allowed', param: null });
      expect(e.message).toContain(`${method} is not allowed on ${path}`);
    }
    const unknown = await call('/v1/nothing-here', { headers: key });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('allow')).toBeNull();
    expect((await errorOf(unknown)).code).toBe('unknown_route');
  });
});

describe('usage on stream chunks', () => {
  function send(tag: string, key: string, body: unknown): Promise<Response> {
    return callWith({ BACKENDS: JSON.stringify([{ url: stubBackend('ok', tag) }]) }, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  it('without include_usage no chunk has a usage field; with it every chunk but the usage-only last has usage: null', async () => {
    const t = await makeTenant({ cacheTtlSeconds: 0 });
    const body = { model: t.model, messages: [{ role: 'user', content: 'hi' }], stream: true };
    const plain = (await readSse(await send(uniqueTag('usage-plain'), t.key, body)))
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(plain.length).toBeGreaterThan(1);
    for (const chunk of plain) expect(Object.keys(chunk)).not.toContain('usage');
    const asked = (
      await readSse(await send(uniqueTag('usage-asked'), t.key, { ...body, stream_options: { include_usage: true } }))
    )
      .filter((d) => d !== '[DONE]')
      .map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(asked.length).toBe(plain.length + 1);
    for (const chunk of asked.slice(0, -1)) expect(chunk).toHaveProperty('usage', null);
    expect(asked.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
  });
});

describe('CORS preflight on /v1', () => {
  it('allows the request headers the browser asks for (the JS SDK’s x-stainless-*), varies on them, never credentials', async () => {
    const asked = [
      'authorization',
      'content-type',
      'x-stainless-os',
      'x-stainless-lang',
      'x-stainless-retry-count',
      'x-stainless-timeout',
    ];
    const res = await call('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': asked.join(', '),
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')!.split(/,\s*/)).toEqual(expect.arrayContaining(asked));
    expect(res.headers.get('vary')!.toLowerCase().split(/,\s*/)).toContain('access-control-request-headers');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    await res.body?.cancel();
    const admin = await call('/admin/tenants', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(admin.headers.get('access-control-allow-origin')).toBeNull();
    expect(admin.headers.get('access-control-allow-headers')).toBeNull();
    await admin.body?.cancel();
  });
});
