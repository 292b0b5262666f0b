import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../src/app-env.ts';
import { onError } from '../src/http/error-response.ts';
import { makeTenant } from './helpers/fixtures.ts';

describe('the error handler', () => {
  it('answers a write that lost a race with a deleted tenant as 409, not 500', async () => {
    const t = await makeTenant();
    // a real D1 foreign-key failure: a grant for a tenant that no longer exists
    const app = new Hono<AppEnv>();
    app.onError(onError);
    app.put('/grant', async (c) => {
      await c.env.DB.prepare('INSERT INTO tenant_models (tenant_id, model_id, created_at) VALUES (?, ?, ?)')
        .bind(`gone-${t.tenantId}`, t.model, 0)
        .run();
      return c.json({ ok: true });
    });
    const res = await app.request('/grant', { method: 'PUT' }, env);
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    expect(body.error.code).toBe('conflict');
    expect(body.error.message).toMatch(/deleted while it ran/);
  });
});
