import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, ADMIN_TOKEN, call, postJson } from './helpers/http.ts';
import { uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

describe('admin API access', () => {
  it.each([
    ['GET', '/admin/tenants'],
    ['POST', '/admin/tenants'],
    ['PUT', '/admin/models/x'],
    ['GET', '/admin/usage'],
    ['DELETE', '/admin/tenants/t/keys/k'],
    ['GET', '/admin/no-such-route'],
  ])('%s %s is 401 without a token and 403 with a wrong one', async (method, path) => {
    const none = await call(path, { method });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { type: 'authentication_error' } });
    const wrong = await call(path, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ error: { type: 'permission_error', code: 'invalid_admin_token' } });
  });

  it('does not accept an API key as the admin token', async () => {
    const t = await makeTenant();
    expect((await call('/admin/tenants', { headers: { authorization: `Bearer ${t.key}` } })).status).toBe(403);
  });
});

describe('admin CRUD', () => {
  it('creates, reads, updates, lists and deletes a tenant', async () => {
    const id = uniqueTag('crud');
    const created = await admin('POST', '/tenants', { id, name: 'Acme', requests_per_minute: 60 });
    expect(created).toMatchObject({
      id,
      name: 'Acme',
      requests_per_minute: 60,
      tokens_per_minute: 1_000_000,
      cache_ttl_seconds: 3600,
    });
    expect(await admin('GET', `/tenants/${id}`)).toMatchObject({ id, name: 'Acme' });
    expect(await admin('PATCH', `/tenants/${id}`, { name: 'Acme 2', cache_ttl_seconds: 0 })).toMatchObject({
      name: 'Acme 2',
      cache_ttl_seconds: 0,
    });
    const list = await admin<{ data: { id: string }[] }>('GET', '/tenants');
    expect(list.data.map((t) => t.id)).toContain(id);
    const dup = await call('/admin/tenants', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ id, name: 'again' }),
    });
    expect(dup.status).toBe(400);
    expect(await dup.json()).toMatchObject({ error: { code: 'already_exists', param: 'id' } });
    expect(await admin('DELETE', `/tenants/${id}`)).toEqual({ id, deleted: true });
    const gone = await call(`/admin/tenants/${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(gone.status).toBe(404);
  });

  it('shows a key secret once, stores only its hash, and lists keys without it', async () => {
    const t = await makeTenant();
    const created = await admin<{ id: string; key: string; prefix: string }>('POST', `/tenants/${t.tenantId}/keys`, {
      name: 'ci',
    });
    expect(created.key).toMatch(/^rk_[A-Za-z0-9_-]{43}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);
    const listed = await admin<{ data: Record<string, unknown>[] }>('GET', `/tenants/${t.tenantId}/keys`);
    expect(listed.data.map((k) => k.id)).toContain(created.id);
    expect(JSON.stringify(listed)).not.toContain(created.key);
    const stored = await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?').bind(created.id).first<Record<string, unknown>>();
    expect(JSON.stringify(stored)).not.toContain(created.key);
    expect(stored!.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('manages the catalogue, grants, policies, presets and preferences', async () => {
    const t = await makeTenant();
    const model = uniqueTag('extra-model');
    expect(await admin('PUT', `/models/${model}`, { default_lambda: 0.4, description: 'second' })).toMatchObject({
      id: model,
      default_lambda: 0.4,
    });
    const ungranted = await postJson('/v1/chat/completions', t.key, { model, messages: [{ role: 'user', content: 'x' }] });
    expect(ungranted.status).toBe(404);
    await admin('PUT', `/tenants/${t.tenantId}/models/${model}`);
    expect(
      (await admin<{ data: { id: string }[] }>('GET', `/tenants/${t.tenantId}/models`)).data.map((m) => m.id).sort(),
    ).toEqual([model, t.model].sort());
    const granted = await postJson('/v1/chat/completions', t.key, { model, messages: [{ role: 'user', content: 'x' }] });
    expect(granted.headers.get('x-realign-lambda')).toBe('0.4');

    expect(
      await admin('PUT', `/tenants/${t.tenantId}/policies/${model}`, { min_lambda: -1, max_lambda: 2, out_of_range: 'clamp' }),
    ).toMatchObject({
      model_id: model,
      min_lambda: -1,
      max_lambda: 2,
      out_of_range: 'clamp',
      allow_explicit: null,
    });
    expect(
      await admin('PUT', `/tenants/${t.tenantId}/presets/deep`, { lambda: -0.5, sampling: { max_tokens: 2048 }, model }),
    ).toMatchObject({
      name: 'deep',
      model_id: model,
      lambda: -0.5,
      sampling: { max_tokens: 2048 },
    });
    expect((await admin<{ data: unknown[] }>('GET', `/tenants/${t.tenantId}/presets`)).data).toHaveLength(1);
    expect(await admin('PUT', `/tenants/${t.tenantId}/users/u1/preferences`, { preset: 'deep' })).toMatchObject({
      user_id: 'u1',
      model_id: '*',
      preset: 'deep',
      lambda: null,
    });
    const viaPref = await postJson('/v1/chat/completions', t.key, {
      model,
      user: 'u1',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(viaPref.headers.get('x-realign-lambda')).toBe('-0.5');
    expect(viaPref.headers.get('x-realign-preset')).toBe('deep');

    expect(await admin('DELETE', `/tenants/${t.tenantId}/users/u1/preferences`)).toMatchObject({ deleted: true });
    expect(await admin('DELETE', `/tenants/${t.tenantId}/presets/deep?model=${model}`)).toMatchObject({ deleted: true });
    expect(await admin('DELETE', `/tenants/${t.tenantId}/policies/${model}`)).toMatchObject({ deleted: true });
    expect(await admin('DELETE', `/tenants/${t.tenantId}/models/${model}`)).toMatchObject({ granted: false });
    expect((await postJson('/v1/chat/completions', t.key, { model, messages: [{ role: 'user', content: 'x' }] })).status).toBe(
      404,
    );
    expect(await admin('DELETE', `/models/${model}`)).toMatchObject({ deleted: true });
  });

  it.each([
    ['/tenants', 'POST', { name: '' }, 'name', '`name` must not be empty'],
    ['/tenants', 'POST', { name: 'x', cache_ttl_seconds: 30 }, 'cache_ttl_seconds', 'at least 60 seconds'],
    ['/tenants', 'POST', { name: 'x', colour: 'red' }, 'colour', 'unknown field(s) `colour`'],
    ['/models/m', 'PUT', { default_lambda: 'high' }, 'default_lambda', 'finite number'],
  ])('refuses a bad admin body: %s %s', async (path, method, body, param, message) => {
    const res = await call(`/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { param: string; message: string } };
    expect(json.error.param).toBe(param);
    expect(json.error.message).toContain(message);
  });

  it('refuses inconsistent policies and preferences', async () => {
    const t = await makeTenant();
    const send = (path: string, body: unknown) =>
      call(`/admin/tenants/${t.tenantId}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify(body),
      });
    const policy = await send('/policies/*', { min_lambda: 2, max_lambda: 1 });
    expect(policy.status).toBe(400);
    expect(await policy.json()).toMatchObject({ error: { param: 'min_lambda' } });
    const pref = await send('/users/u/preferences', {});
    expect(pref.status).toBe(400);
    const preset = await send('/presets/p', { lambda: 0.5, sampling: { temprature: 0 } });
    expect(preset.status).toBe(400);
    expect(await preset.json()).toMatchObject({
      error: { param: 'sampling.temprature', message: 'unknown field(s) `sampling.temprature`; remove them' },
    });
    const missing = await call(`/admin/tenants/${uniqueTag('nobody')}/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: '{}',
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'tenant_not_found' } });
  });
});

describe('usage', () => {
  it('writes a usage row per request with both branches, and reports sums per key', async () => {
    const t = await makeTenant();
    const second = await admin<{ id: string; key: string }>('POST', `/tenants/${t.tenantId}/keys`, {});
    const ids: string[] = [];
    for (const [key, lambda] of [
      [t.key, 0.5],
      [t.key, 1],
      [second.key, 0],
    ] as const) {
      const res = await postJson('/v1/chat/completions', key, {
        model: t.model,
        lambda,
        messages: [{ role: 'user', content: 'count me' }],
      });
      expect(res.status).toBe(200);
      ids.push(res.headers.get('x-request-id')!);
    }
    const rows = await Promise.all(ids.map((id) => usageRowOf(id)));
    expect(rows[0]).toMatchObject({
      tenant_id: t.tenantId,
      key_id: t.keyId,
      model_id: t.model,
      endpoint: '/v1/chat/completions',
      status: 200,
      lambda: 0.5,
      cached: 0,
    });
    // The stub computes both branches for 0 < λ < 1 and skips one at λ = 1 (reference) or λ = 0 (aligned).
    expect(rows[0]).toMatchObject({
      aligned_prompt_tokens: 5,
      aligned_completion_tokens: 3,
      reference_prompt_tokens: 5,
      reference_completion_tokens: 3,
    });
    expect(rows[1]).toMatchObject({ aligned_prompt_tokens: 5, reference_prompt_tokens: 0 });
    expect(rows[2]).toMatchObject({ key_id: second.id, aligned_prompt_tokens: 0, reference_prompt_tokens: 5 });

    const report = await admin<{ data: Record<string, unknown>[] }>('GET', `/usage?tenant=${t.tenantId}&group_by=key`);
    const byKey = Object.fromEntries(report.data.map((l) => [l.group, l]));
    expect(byKey[t.keyId]).toMatchObject({
      requests: 2,
      prompt_tokens: 10,
      completion_tokens: 6,
      aligned_prompt_tokens: 10,
      reference_prompt_tokens: 5,
    });
    expect(byKey[second.id]).toMatchObject({
      requests: 1,
      prompt_tokens: 5,
      aligned_prompt_tokens: 0,
      reference_prompt_tokens: 5,
    });
    const bad = await call('/admin/usage?group_by=week', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(bad.status).toBe(400);
  });

  it('does not bill a request refused before it reached a backend', async () => {
    const t = await makeTenant();
    const res = await postJson('/v1/chat/completions', t.key, {
      model: t.model,
      lambda: 5,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(res.status).toBe(400);
    const report = await admin<{ data: Record<string, unknown>[] }>('GET', `/usage?tenant=${t.tenantId}`);
    expect(report.data).toEqual([]);
  });
});
