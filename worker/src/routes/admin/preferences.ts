/** Admin: end users' λ preferences (keyed by OpenAI's `user` field or the x-realign-user header). */
import { Hono } from 'hono';
import { notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { deletePreference, listPreferences, upsertPreference } from '../../db/preferences.ts';
import { body, pathId, preferenceSchema, queryModel, requireTenant, tenantList } from './admin-input.ts';

/** Routes under /admin/tenants/:tenant/users. */
export const preferenceRoutes = new Hono<AppEnv>()
  .get('/', tenantList(listPreferences))
  .get('/:user/preferences', async (c) => {
    const tenant = await requireTenant(c);
    return c.json({ object: 'list', data: await listPreferences(c.env.DB, tenant.id, pathId(c, 'user')) });
  })
  .put('/:user/preferences', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, preferenceSchema);
    const row = await upsertPreference(c.env.DB, {
      tenant_id: tenant.id,
      user_id: pathId(c, 'user'),
      model_id: input.model ?? '*',
      lambda: input.lambda ?? null,
      preset: input.preset ?? null,
      updated_at: Date.now(),
    });
    return c.json(row);
  })
  .delete('/:user/preferences', async (c) => {
    const tenant = await requireTenant(c);
    const user = pathId(c, 'user');
    const model = queryModel(c);
    if (!(await deletePreference(c.env.DB, tenant.id, user, model)))
      throw notFound(`user \`${user}\` has no preference for \`${model}\``, 'preference_not_found', 'user');
    return c.json({ tenant_id: tenant.id, user_id: user, model_id: model, deleted: true });
  });
