/** Admin: λ policies (per model, or `*` for all of the tenant's models) and presets of a tenant. */
import { Hono } from 'hono';
import { invalidRequest, notFound } from '../../../../shared/src/errors.ts';
import type { AppEnv } from '../../app-env.ts';
import { deletePolicy, listPolicies, upsertPolicy, type PolicyRow } from '../../db/policies.ts';
import { deletePreset, listPresets, upsertPreset, type PresetRow } from '../../db/presets.ts';
import { findEmptyRange, parseAdapterList, parseAdapterRanges, parseMix, type RangeRow } from '../../policy/build-policy.ts';
import {
  body,
  pathId,
  pathPresetName,
  policySchema,
  presetSchema,
  queryModel,
  requireTenant,
  tenantList,
} from './admin-input.ts';

function presetOut(row: PresetRow) {
  return { ...row, sampling: JSON.parse(row.sampling) as unknown, mix: parseMix(row.mix) ?? null };
}

/** A policy row as the API shows it: its adapter columns as JSON values, not text. */
function policyOut(row: PolicyRow) {
  return {
    ...row,
    allowed_adapters: parseAdapterList(row.allowed_adapters) ?? null,
    adapter_ranges: row.adapter_ranges === null ? null : parseAdapterRanges(row.adapter_ranges),
  };
}

const jsonOrNull = (v: unknown) => (v == null ? null : JSON.stringify(v));

/**
 * Refuses a policy write after which some model's merged range (its own row over the tenant's `*` row over the
 * built-in [0, 1]) would be empty: every explicit λ would be refused and presets clamped below the minimum.
 */
async function refuseEmptyRange(
  db: D1Database,
  tenantId: string,
  apply: (rows: RangeRow[]) => RangeRow[],
  param: (model: string, adapter: string | null) => string,
): Promise<void> {
  const empty = findEmptyRange(apply(await listPolicies(db, tenantId)));
  if (empty === null) return;
  const scope =
    empty.model === '*' ? 'the tenant-wide (`*`) policy' : `model \`${empty.model}\` (its row over the tenant-wide \`*\` row)`;
  const which = empty.adapter === null ? scope : `adapter \`${empty.adapter}\` of ${scope}`;
  throw invalidRequest(
    `this change would leave ${which} with an empty λ range [${empty.range.min}, ${empty.range.max}]: min_lambda must not exceed max_lambda after merging; change the other row first`,
    param(empty.model, empty.adapter),
    'empty_lambda_range',
  );
}

/** Routes under /admin/tenants/:tenant/policies. */
export const policyRoutes = new Hono<AppEnv>()
  .get(
    '/',
    tenantList(async (db, tenantId) => (await listPolicies(db, tenantId)).map(policyOut)),
  )
  .put('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, policySchema);
    const next: PolicyRow = {
      tenant_id: tenant.id,
      model_id: pathId(c, 'model', true),
      min_lambda: input.min_lambda ?? null,
      max_lambda: input.max_lambda ?? null,
      allow_explicit: input.allow_explicit == null ? null : input.allow_explicit ? 1 : 0,
      out_of_range: input.out_of_range ?? null,
      default_preset: input.default_preset ?? null,
      allowed_adapters: jsonOrNull(input.allowed_adapters),
      adapter_ranges: jsonOrNull(input.adapter_ranges),
      updated_at: Date.now(),
    };
    // the field of this write that closes the range: its min when it set one, else its max (an adapter's own, when
    // the range that closes is an adapter's and this write bounds it)
    const own = (a: string) => input.adapter_ranges?.[a];
    await refuseEmptyRange(
      c.env.DB,
      tenant.id,
      (rows) => [...rows.filter((r) => r.model_id !== next.model_id), next],
      (_model, a) =>
        a !== null && own(a) !== undefined
          ? `adapter_ranges.${a}.${own(a)!.min_lambda !== undefined ? 'min_lambda' : 'max_lambda'}`
          : next.min_lambda !== null
            ? 'min_lambda'
            : 'max_lambda',
    );
    return c.json(policyOut(await upsertPolicy(c.env.DB, next)));
  })
  .delete('/:model', async (c) => {
    const tenant = await requireTenant(c);
    const model = pathId(c, 'model', true);
    await refuseEmptyRange(
      c.env.DB,
      tenant.id,
      (rows) => rows.filter((r) => r.model_id !== model),
      () => 'model',
    );
    if (!(await deletePolicy(c.env.DB, tenant.id, model)))
      throw notFound(`tenant \`${tenant.id}\` has no policy for \`${model}\``, 'policy_not_found', 'model');
    return c.json({ tenant_id: tenant.id, model_id: model, deleted: true });
  });

/** Routes under /admin/tenants/:tenant/presets (`?model=` selects a model's own presets; default `*`). */
export const presetRoutes = new Hono<AppEnv>()
  .get(
    '/',
    tenantList(async (db, tenantId) => (await listPresets(db, tenantId)).map(presetOut)),
  )
  .put('/:name', async (c) => {
    const tenant = await requireTenant(c);
    const input = await body(c, presetSchema);
    const row = await upsertPreset(c.env.DB, {
      tenant_id: tenant.id,
      model_id: input.model ?? '*',
      name: pathPresetName(c),
      lambda: input.lambda,
      sampling: JSON.stringify(input.sampling ?? {}),
      adapter: input.adapter ?? null,
      mix: jsonOrNull(input.mix),
      updated_at: Date.now(),
    });
    return c.json(presetOut(row));
  })
  .delete('/:name', async (c) => {
    const tenant = await requireTenant(c);
    const name = pathPresetName(c);
    const model = queryModel(c);
    if (!(await deletePreset(c.env.DB, tenant.id, model, name)))
      throw notFound(`tenant \`${tenant.id}\` has no preset \`${name}\` for \`${model}\``, 'preset_not_found', 'name');
    return c.json({ tenant_id: tenant.id, model_id: model, name, deleted: true });
  });
