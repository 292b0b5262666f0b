/**
 * The edge's security properties inside workerd: the constant-time secret comparison's behaviour, every admin route
 * closed without the admin token (and nothing changed by a refused call), key secrets returned only at creation and
 * absent from every later answer, from D1 and from the logs (with the admin token, the HMAC secret and prompt text),
 * the admin body limit, cache isolation for streamed replays, and the playground's and /v1's browser headers.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KEY_PREFIX, secretsEqual } from '../src/auth/secrets.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { ADMIN_TOKEN, admin, call, callWith, postJson } from './helpers/http.ts';
import { stubBackend, uniqueTag } from './helpers/stub.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('secretsEqual (admin token comparison)', () => {
  it('is true only for identical strings, wherever and however they differ', async () => {
    const token = 'admin-token-0123456789abcdef';
    expect(await secretsEqual(token, token)).toBe(true);
    expect(await secretsEqual('', '')).toBe(true);
    expect(await secretsEqual('ж🙂', 'ж🙂')).toBe(true);
    const near = [
      `X${token.slice(1)}`,
      `${token.slice(0, -1)}X`,
      token.slice(0, -1),
      `${token}x`,
      token.toUpperCase(),
      ` ${token}`,
      '',
      token.repeat(100),
      token.normalize('NFD') + '\u0301',
    ];
    for (const other of near) {
      expect(await secretsEqual(other, token), JSON.stringify(other)).toBe(false);
      expect(await secretsEqual(token, other), JSON.stringify(other)).toBe(false);
    }
  });
});

/** Every admin route (method, path) — see src/routes/admin/admin-app.ts. */
const ADMIN_ROUTES: [string, string][] = [
  ['GET', '/admin/tenants'],
  ['POST', '/admin/tenants'],
  ['GET', '/admin/tenants/t1'],
  ['PATCH', '/admin/tenants/t1'],
  ['DELETE', '/admin/tenants/t1'],
  ['POST', '/admin/tenants/t1/keys'],
  ['GET', '/admin/tenants/t1/keys'],
  ['DELETE', '/admin/tenants/t1/keys/k1'],
  ['GET', '/admin/models'],
  ['PUT', '/admin/models/m1'],
  ['DELETE', '/admin/models/m1'],
  ['GET', '/admin/tenants/t1/models'],
  ['PUT', '/admin/tenants/t1/models/m1'],
  ['DELETE', '/admin/tenants/t1/models/m1'],
  ['GET', '/admin/tenants/t1/policies'],
  ['PUT', '/admin/tenants/t1/policies/*'],
  ['DELETE', '/admin/tenants/t1/policies/*'],
  ['GET', '/admin/tenants/t1/presets'],
  ['PUT', '/admin/tenants/t1/presets/fast'],
  ['DELETE', '/admin/tenants/t1/presets/fast'],
  ['GET', '/admin/tenants/t1/users'],
  ['GET', '/admin/tenants/t1/users/u1/preferences'],
  ['PUT', '/admin/tenants/t1/users/u1/preferences'],
  ['DELETE', '/admin/tenants/t1/users/u1/preferences'],
  ['GET', '/admin/usage'],
];

describe('admin routes without the admin token', () => {
  it('every route: 401 without credentials, 403 with a wrong token or an API key, and nothing changes', async () => {
    const t = await makeTenant();
    const probe = uniqueTag('closed');
    const routes = ADMIN_ROUTES.map(([m, p]) => [m, p.replaceAll('t1', t.tenantId).replaceAll('m1', probe)] as const);
    const body = JSON.stringify({ id: probe, name: probe, default_lambda: 0.5, lambda: 0.5 });
    const credentials: [string, Record<string, string>, number, string][] = [
      ['none', {}, 401, 'missing_admin_token'],
      ['basic', { authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` }, 401, 'missing_admin_token'],
      ['empty bearer', { authorization: 'Bearer ' }, 401, 'missing_admin_token'],
      ['wrong token', { authorization: `Bearer ${ADMIN_TOKEN}x` }, 403, 'invalid_admin_token'],
      ['token prefix', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }, 403, 'invalid_admin_token'],
      ['API key', { authorization: `Bearer ${t.key}` }, 403, 'invalid_admin_token'],
    ];
    for (const [method, path] of routes) {
      for (const [name, headers, status, code] of credentials) {
        const res = await call(path, {
          method,
          headers: { 'content-type': 'application/json', ...headers },
          body: method === 'GET' || method === 'DELETE' ? undefined : body,
        });
        expect(res.status, `${method} ${path} with ${name}`).toBe(status);
        expect(await res.json(), `${method} ${path} with ${name}`).toMatchObject({ error: { code } });
      }
    }
    // none of those calls created, changed or deleted anything
    expect((await call(`/admin/tenants/${probe}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status).toBe(404);
    expect((await admin<{ data: { id: string }[] }>('GET', '/models')).data.map((m) => m.id)).not.toContain(probe);
    expect((await admin<{ data: unknown[] }>('GET', `/tenants/${t.tenantId}/keys`)).data).toHaveLength(1);
    expect(
      (await postJson('/v1/chat/completions', t.key, { model: t.model, messages: [{ role: 'user', content: 'still granted?' }] }))
        .status,
    ).toBe(200);
  }, 60_000);

  it('with no ADMIN_TOKEN configured the admin API is closed, not open', async () => {
    for (const headers of [{}, { authorization: 'Bearer anything' }, { authorization: 'Bearer undefined' }] as Record<
      string,
      string
    >[]) {
      const res = await callWith({ ADMIN_TOKEN: '' }, '/admin/tenants', { headers });
      expect([401, 403]).toContain(res.status);
    }
    expect(
      await (await callWith({ ADMIN_TOKEN: '' }, '/admin/tenants', { headers: { authorization: 'Bearer x' } })).json(),
    ).toMatchObject({ error: { code: 'admin_disabled' } });
  });

  it('refuses an admin body over 64 KiB with 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(70 * 1024) });
    const declared = await call('/admin/tenants', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: big,
    });
    expect(declared.status).toBe(413);
    const bytes = new TextEncoder().encode(big);
    const streamed = await call('/admin/tenants', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: new ReadableStream({ start: (c) => (c.enqueue(bytes), c.close()) }),
    });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ error: { code: 'payload_too_large' } });
  });
});

/** Whether `text` holds any 16-character piece of `secret` (a truncated secret is still a leak). */
function leaks(text: string, secret: string): boolean {
  const n = Math.min(16, secret.length);
  for (let i = 0; i + n <= secret.length; i++) if (text.includes(secret.slice(i, i + n))) return true;
  return false;
}

describe('secrets and prompts stay out of answers, storage and logs', () => {
  it('a key is in its creation answer only — not in listings, revocation, usage, D1, or any log line', async () => {
    const logged: string[] = [];
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const)
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' ')));
    const marker = `PROMPT-${uniqueTag('marker')}`;
    const t = await makeTenant();
    const created = await admin<{ id: string; key: string }>('POST', `/tenants/${t.tenantId}/keys`, { name: 'secret-test' });
    const key = created.key;
    const answers: string[] = [];
    const keep = async (res: Response) => {
      const headers: string[] = [];
      res.headers.forEach((v, k) => headers.push(`${k}: ${v}`));
      answers.push(headers.join('\n') + (await res.text()));
    };
    const chat = { model: t.model, messages: [{ role: 'user', content: marker }] };
    await keep(await postJson('/v1/chat/completions', key, chat));
    await keep(await postJson('/v1/chat/completions', key, { ...chat, stream: true }));
    await keep(await postJson('/v1/chat/completions', `${key.slice(0, -1)}x`, chat));
    await keep(await postJson('/v1/chat/completions', key, { ...chat, top_p: 7 }));
    // a backend that breaks mid-stream and one that answers garbage: the error paths log, but not the prompt
    const brokenBackends = JSON.stringify([{ url: stubBackend('die', uniqueTag('sec')), weight: 1 }]);
    await keep(
      await callWith({ BACKENDS: brokenBackends }, '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ ...chat, stream: true }),
      }),
    );
    await keep(
      await callWith(
        { BACKENDS: JSON.stringify([{ url: stubBackend('garbage', uniqueTag('sec')), weight: 1 }]) },
        '/v1/chat/completions',
        { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify(chat) },
      ),
    );
    // an unexpected failure (no database binding) goes through the logging error handler; a user not seen yet, so
    // that its request context is not in the read cache (db/read-cache.ts) and D1 is asked
    await keep(
      await callWith({ DB: undefined } as unknown as Partial<Record<keyof Env, string>>, '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ ...chat, user: 'not-cached-yet' }),
      }),
    );
    await keep(await call(`/admin/tenants/${t.tenantId}/keys`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    await keep(
      await call(`/admin/tenants/${t.tenantId}/keys/${created.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }),
    );
    await keep(await postJson('/v1/chat/completions', key, chat)); // revoked
    await keep(
      await call(`/admin/usage?tenant=${t.tenantId}&group_by=key`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }),
    );
    await keep(await call(`/admin/tenants/${t.tenantId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    await keep(await call('/readyz'));

    expect(answers.some((a) => a.includes('"status":500') || a.includes('internal error'))).toBe(true);
    const hash = (await env.DB.prepare('SELECT key_hash FROM api_keys WHERE id = ?')
      .bind(created.id)
      .first<{ key_hash: string }>())!.key_hash;
    // the key's first characters are its public prefix (shown in listings); the rest must appear nowhere
    const secretPart = key.slice(KEY_PREFIX.length + 6);
    for (const a of answers)
      for (const s of [secretPart, hash, ADMIN_TOKEN, env.BACKEND_HMAC_SECRET]) expect(leaks(a, s), s).toBe(false);
    const row = await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?').bind(created.id).first<Record<string, unknown>>();
    expect(Object.values(row!).map(String)).not.toContain(key);
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged)
      for (const s of [secretPart, hash, ADMIN_TOKEN, env.BACKEND_HMAC_SECRET, marker])
        expect(leaks(line, s), `${s} in ${line.slice(0, 200)}`).toBe(false);
  });
});

describe('cache isolation', () => {
  it("a streamed request of tenant B is never replayed from tenant A's entry for the same model and body", async () => {
    const model = uniqueTag('shared-model');
    const a = await makeTenant({ model });
    const b = await makeTenant({ model });
    const body = { model, messages: [{ role: 'user', content: 'same question' }], temperature: 0, lambda: 0.5 };
    expect((await postJson('/v1/chat/completions', a.key, body)).headers.get('x-realign-cache')).toBe('MISS');
    await vi.waitUntil(
      async () =>
        (await postJson('/v1/chat/completions', a.key, { ...body, stream: true })).headers.get('x-realign-cache') === 'HIT',
      { timeout: 5_000, interval: 50 },
    );
    const other = await postJson('/v1/chat/completions', b.key, { ...body, stream: true });
    expect(other.headers.get('x-realign-cache')).toBe('MISS');
    await other.text();
  });
});

describe('browser-facing headers', () => {
  it('every playground asset carries the CSP and the other security headers', async () => {
    for (const path of ['/playground', '/playground/app.js', '/playground/app.css']) {
      const res = await call(path);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'none'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      await res.text();
    }
  });

  it('/v1 allows any origin but never credentials; /admin answers carry no CORS headers at all', async () => {
    const t = await makeTenant();
    const origin = { origin: 'https://evil.example' };
    const answers = [
      await call('/v1/models', { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'POST' } }),
      await call('/v1/models', { headers: { ...origin, authorization: `Bearer ${t.key}` } }),
      await call('/v1/models', { headers: origin }),
    ];
    for (const res of answers) {
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      await res.body?.cancel();
    }
    for (const init of [
      { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'GET' } },
      { headers: { ...origin, authorization: `Bearer ${ADMIN_TOKEN}` } },
    ]) {
      const res = await call('/admin/tenants', init);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      await res.body?.cancel();
    }
  });
});
