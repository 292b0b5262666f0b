/** Admin: tenants (create, list, read, update, delete). */
import { Hono } from 'hono';
import { invalidRequest, notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { newId } from '../../auth/secrets.ts';
import { deleteTenant, insertTenant, listTenants, newGeneration, updateTenant } from '../../db/tenants.ts';
import { forgetLimiter } from '../../ratelimit/admit.ts';
import { body, createTenantSchema, pathId, requireTenant, updateTenantSchema } from './admin-input.ts';

/** Routes under /admin/tenants. */
export const tenantRoutes = new Hono<AppEnv>()
  .post('/', async (c) => {
    const input = await body(c, createTenantSchema);
    const row = {
      id: input.id ?? newId('tenant'),
      name: input.name,
      requests_per_minute: input.requests_per_minute ?? 600,
      tokens_per_minute: input.tokens_per_minute ?? 1_000_000,
      cache_ttl_seconds: input.cache_ttl_seconds ?? 3600,
      created_at: Date.now(),
      generation: newGeneration(),
      rate_limit_fail_mode: input.rate_limit_fail_mode ?? ('closed' as const),
    };
    if (!(await insertTenant(c.env.DB, row)))
      throw invalidRequest(`tenant \`${row.id}\` already exists; PATCH it instead`, 'id', 'already_exists');
    return c.json(row, 201);
  })
  .get('/', async (c) => c.json({ object: 'list', data: await listTenants(c.env.DB) }))
  .get('/:tenant', async (c) => c.json(await requireTenant(c)))
  .patch('/:tenant', async (c) => {
    const tenantId = pathId(c, 'tenant');
    const row = await updateTenant(c.env.DB, tenantId, await body(c, updateTenantSchema));
    if (row === null) throw notFound(`tenant \`${tenantId}\` does not exist`, 'tenant_not_found', 'tenant');
    return c.json(row);
  })
  .delete('/:tenant', async (c) => {
    const tenantId = pathId(c, 'tenant', false, true);
    const deleted = await deleteTenant(c.env.DB, tenantId);
    if (deleted === null) throw notFound(`tenant \`${tenantId}\` does not exist`, 'tenant_not_found', 'tenant');
    // Its cache entries (keyed by generation) are unreachable now and expire with their TTL; its limiter is dropped.
    c.executionCtx.waitUntil(forgetLimiter(c.env, deleted.generation).catch(() => undefined));
    return c.json({ id: tenantId, deleted: true });
  });
