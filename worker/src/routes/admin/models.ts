/** Admin: the model catalogue (/admin/models) and a tenant's model grants (/admin/tenants/:tenant/models). */
import { Hono } from 'hono';
import { notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import {
  deleteModel,
  grantModel,
  listModels,
  listTenantModels,
  revokeModel,
  upsertModel,
  type ModelRow,
} from '../../db/models.ts';
import { parseAdapterList } from '../../policy/build-policy.ts';
import { body, modelSchema, pathId, requireTenant, tenantList } from './admin-input.ts';

/** A catalogue row as the API shows it: `adapters` as an array (null: not told). */
function modelOut<T extends ModelRow>(row: T) {
  return { ...row, adapters: parseAdapterList(row.adapters) ?? null };
}

/** Routes under /admin/models. */
export const catalogueRoutes = new Hono<AppEnv>()
  .get('/', async (c) => c.json({ object: 'list', data: (await listModels(c.env.DB)).map(modelOut) }))
  .put('/:model', async (c) => {
    const input = await body(c, modelSchema);
    const row = await upsertModel(c.env.DB, {
      id: pathId(c, 'model'),
      default_lambda: input.default_lambda ?? 1,
      description: input.description ?? '',
      context_length: input.context_length ?? null,
      adapters: input.adapters == null ? null : JSON.stringify(input.adapters),
      created_at: Date.now(),
    });
    return c.json(modelOut(row));
  })
  .delete('/:model', async (c) => {
    const id = pathId(c, 'model');
    if (!(await deleteModel(c.env.DB, id))) throw notFound(`model \`${id}\` is not in the catalogue`, 'model_not_found', 'model');
    return c.json({ id, deleted: true });
  });

/** Routes under /admin/tenants/:tenant/models. */
export const grantRoutes = new Hono<AppEnv>()
  .get(
    '/',
    tenantList(async (db, tenantId) => (await listTenantModels(db, tenantId)).map(modelOut)),
  )
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
