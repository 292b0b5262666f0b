import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers/eventually.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, call, postJson } from './helpers/http.ts';

const chat = (model: string, extra: Record<string, unknown> = {}) => ({
  model,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe('API keys', () => {
  it('rejects a missing key with 401', async () => {
    const t = await makeTenant();
    const res = await postJson('/v1/chat/completions', null, chat(t.model));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { type: 'authentication_error', code: 'missing_api_key' } });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('rejects an unknown key and a malformed Authorization header with 401', async () => {
    const t = await makeTenant();
    const wrong = await postJson('/v1/chat/completions', t.key + 'x', chat(t.model));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
    const basic = await call('/v1/models', { headers: { authorization: `Basic ${btoa('a:b')}` } });
    expect(basic.status).toBe(401);
  });

  it('accepts a key until it is revoked, then answers 401 at once', async () => {
    const t = await makeTenant();
    expect((await call('/v1/models', { headers: { authorization: `Bearer ${t.key}` } })).status).toBe(200);
    const revoked = await admin<{ revoked_at: number | null }>('DELETE', `/tenants/${t.tenantId}/keys/${t.keyId}`);
    expect(revoked.revoked_at).toBeGreaterThan(0);
    const res = await postJson('/v1/chat/completions', t.key, chat(t.model));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'revoked_api_key' } });
  });
});

describe('tenant isolation', () => {
  it("lists only the tenant's own models", async () => {
    const a = await makeTenant();
    const b = await makeTenant();
    const res = await call('/v1/models', { headers: { authorization: `Bearer ${a.key}` } });
    const list = (await res.json()) as { object: string; data: { id: string }[] };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual([a.model]);
    expect(list.data.map((m) => m.id)).not.toContain(b.model);
  });

  it("cannot use tenant B's model with tenant A's key (404, as if it did not exist)", async () => {
    const a = await makeTenant();
    const b = await makeTenant();
    const res = await postJson('/v1/chat/completions', a.key, chat(b.model));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'model_not_found', param: 'model' } });
    expect((await postJson('/v1/chat/completions', b.key, chat(b.model))).status).toBe(200);
  });

  it("cannot use tenant B's preset with tenant A's key", async () => {
    const shared = `model-${crypto.randomUUID().slice(0, 8)}`;
    const a = await makeTenant({ model: shared });
    const b = await makeTenant({ model: shared, presets: { secret: { lambda: 0.2 } } });
    const res = await postJson('/v1/chat/completions', a.key, chat(shared, { preset: 'secret' }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'unknown_preset', param: 'preset' } });
    const ok = await postJson('/v1/chat/completions', b.key, chat(shared, { preset: 'secret' }));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-realign-lambda')).toBe('0.2');
  });

  it("never serves tenant B's cached answer to tenant A, even for the same model and body", async () => {
    const shared = `model-${crypto.randomUUID().slice(0, 8)}`;
    const a = await makeTenant({ model: shared });
    const b = await makeTenant({ model: shared });
    const body = chat(shared, { temperature: 0, lambda: 0.5 });
    const first = await postJson('/v1/chat/completions', b.key, body);
    expect(first.headers.get('x-realign-cache')).toBe('MISS');
    // the entry is stored after the answer (waitUntil)
    await eventually('the cache entry', async () =>
      (await env.CACHE.list({ prefix: `resp:v2:${b.generation}:` })).keys.length > 0 ? true : null,
    );
    const again = await postJson('/v1/chat/completions', b.key, body);
    expect(again.headers.get('x-realign-cache')).toBe('HIT');
    const other = await postJson('/v1/chat/completions', a.key, body);
    expect(other.headers.get('x-realign-cache')).toBe('MISS');
    const bText = ((await again.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const aText = ((await other.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(aText).not.toBe(bText);
  });
});
