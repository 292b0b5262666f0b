/** Admin: λ policies (per model, or `*` for all of the tenant's models) and presets of a tenant. */
import { Hono } from 'hono';
import { notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { deletePolicy, listPolicies, upsertPolicy } from '../../db/policies.ts';
import { deletePreset, listPresets, upsertPreset, type PresetRow } from '../../db/presets.ts';
import { body, pathId, pathPresetName, policySchema, presetSchema, requireTenant, tenantList } from './admin-input.ts';

function presetOut(row: PresetRow) {
  return { ...row, sampling: JSON.parse(row.sampling) as unknown };
}

/** Routes under /admin/tenants/:tenant/policies. */
export const policyRoutes = new Hono<AppEnv>()
  .get('/', tenantList(listPolicies))
  .put('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, policySchema);
    const row = await upsertPolicy(c.env.DB, {
      tenant_id: tenant.id,
      model_id: pathId(c, 'model', true),
      min_lambda: input.min_lambda ?? null,
      max_lambda: input.max_lambda ?? null,
      allow_explicit: input.allow_explicit == null ? null : input.allow_explicit ? 1 : 0,
      out_of_range: input.out_of_range ?? null,
      default_preset: input.default_preset ?? null,
      updated_at: Date.now(),
    });
    return c.json(row);
  })
  .delete('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const model = pathId(c, 'model', true);
    if (!(await deletePolicy(c.env.DB, tenant.id, model))) throw notFound(`tenant \`${tenant.id}\` has no policy for \`${model}\``, 'policy_not_found', 'model');
    return c.json({ tenant_id: tenant.id, model_id: model, deleted: true });
  });

/** Routes under /admin/tenants/:tenant/presets (`?model=` selects a model's own presets; default `*`). */
export const presetRoutes = new Hono<AppEnv>()
  .get('/', tenantList(async (db, tenantId) => (await listPresets(db, tenantId)).map(presetOut)))
  .put('/:name', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, presetSchema);
    const row = await upsertPreset(c.env.DB, {
      tenant_id: tenant.id,
      model_id: input.model ?? '*',
      name: pathPresetName(c),
      lambda: input.lambda,
      sampling: JSON.stringify(input.sampling ?? {}),
      updated_at: Date.now(),
    });
    return c.json(presetOut(row));
  })
  .delete('/:name', async (c) => {
    const tenant = await requireTenant(c);
    const name = pathPresetName(c);
    const model = c.req.query('model') ?? '*';
    if (!(await deletePreset(c.env.DB, tenant.id, model, name))) throw notFound(`tenant \`${tenant.id}\` has no preset \`${name}\` for \`${model}\``, 'preset_not_found', 'name');
    return c.json({ tenant_id: tenant.id, model_id: model, name, deleted: true });
  });
