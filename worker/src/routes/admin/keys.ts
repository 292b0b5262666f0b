/** Admin: API keys of a tenant. The secret is in the creation answer only; listings show its prefix. */
import { Hono } from 'hono';
import { notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { generateApiKey, hashApiKey, newId } from '../../auth/secrets.ts';
import { insertKey, listKeys, revokeKey } from '../../db/api-keys.ts';
import { body, createKeySchema, pathId, requireTenant, tenantList } from './admin-input.ts';

/** Routes under /admin/tenants/:tenant/keys. */
export const keyRoutes = new Hono<AppEnv>()
  .post('/', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, createKeySchema);
    const { key, prefix } = generateApiKey();
    const row = {
      id: newId('key'),
      tenant_id: tenant.id,
      name: input.name ?? '',
      prefix,
      requests_per_minute: input.requests_per_minute ?? null,
      tokens_per_minute: input.tokens_per_minute ?? null,
      user: input.user ?? null,
      created_at: Date.now(),
    };
    await insertKey(c.env.DB, { ...row, key_hash: await hashApiKey(key) });
    c.header('cache-control', 'no-store');
    return c.json({ ...row, revoked_at: null, key, note: 'store this key now: it is not shown again' }, 201);
  })
  .get('/', tenantList(listKeys))
  .delete('/:key', async (c) => {
    const tenant = await requireTenant(c);
    const keyId = pathId(c, 'key');
    const row = await revokeKey(c.env.DB, tenant.id, keyId, Date.now());
    if (row === null) throw notFound(`tenant \`${tenant.id}\` has no key \`${keyId}\``, 'key_not_found', 'key');
    return c.json(row);
  });
