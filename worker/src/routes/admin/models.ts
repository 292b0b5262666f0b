/** Admin: the model catalogue (/admin/models) and a tenant's model grants (/admin/tenants/:tenant/models). */
import { Hono } from 'hono';
import { notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { deleteModel, grantModel, listModels, listTenantModels, revokeModel, upsertModel } from '../../db/models.ts';
import { body, modelSchema, pathId, requireTenant, tenantList } from './admin-input.ts';

/** Routes under /admin/models. */
export const catalogueRoutes = new Hono<AppEnv>()
  .get('/', async (c) => c.json({ object: 'list', data: await listModels(c.env.DB) }))
  .put('/:model', async (c) => {
    const input = await body(c, modelSchema);
    const row = await upsertModel(c.env.DB, {
      id: pathId(c, 'model'),
      default_lambda: input.default_lambda ?? 1,
      description: input.description ?? '',
      context_length: input.context_length ?? null,
      created_at: Date.now(),
    });
    return c.json(row);
  })
  .delete('/:model', async (c) => {
    const id = pathId(c, 'model');
    if (!(await deleteModel(c.env.DB, id))) throw notFound(`model \`${id}\` is not in the catalogue`, 'model_not_found', 'model');
    return c.json({ id, deleted: true });
  });

/** Routes under /admin/tenants/:tenant/models. */
export const grantRoutes = new Hono<AppEnv>()
  .get('/', tenantList(listTenantModels))
  .put('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const model = pathId(c, 'model');
    if (!(await grantModel(c.env.DB, tenant.id, model, Date.now()))) {
      throw notFound(`model \`${model}\` is not in the catalogue; PUT /admin/models/${model} first`, 'model_not_found', 'model');
    }
    return c.json({ tenant_id: tenant.id, model_id: model, granted: true });
  })
  .delete('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const model = pathId(c, 'model');
    if (!(await revokeModel(c.env.DB, tenant.id, model)))
      throw notFound(`tenant \`${tenant.id}\` has no model \`${model}\``, 'model_not_found', 'model');
    return c.json({ tenant_id: tenant.id, model_id: model, granted: false });
  });
