/**
 * Everything a generation request needs from D1, in one round trip: whether the tenant may use the model (and
 * its default λ), the policy rows, the presets and the user's preferences for `*` and for this model. Served from
 * the per-isolate read cache (db/read-cache.ts) when warm.
 */
import { notFound, type ApiError } from '../../../shared/src/errors.ts';
import type { PolicyRow } from './policies.ts';
import type { PreferenceRow } from './preferences.ts';
import type { PresetRow } from './presets.ts';
import { cachedRead } from './read-cache.ts';

/** The rows behind one request's λ policy. */
export interface RequestContextRows {
  /** null when the model is not in the catalogue or not granted to the tenant. */
  model: { id: string; default_lambda: number; context_length: number | null; adapters: string | null } | null;
  policies: PolicyRow[];
  presets: PresetRow[];
  preferences: PreferenceRow[];
}

/** The rows for (tenant, model, user): from the read cache (db/read-cache.ts), else with one D1 batch. */
export function loadRequestContext(
  env: Env,
  tenantId: string,
  modelId: string,
  userId: string | null,
): Promise<RequestContextRows> {
  return cachedRead(env, `ctx:${JSON.stringify([tenantId, modelId, userId])}`, () =>
    readRequestContext(env.DB, tenantId, modelId, userId),
  );
}

/** Loads the rows for (tenant, model, user) with one D1 batch. */
export async function readRequestContext(
  db: D1Database,
  tenantId: string,
  modelId: string,
  userId: string | null,
): Promise<RequestContextRows> {
  const [model, policies, presets, preferences] = await db.batch([
    db
      .prepare(
        'SELECT m.id, m.default_lambda, m.context_length, m.adapters FROM tenant_models tm JOIN models m ON m.id = tm.model_id WHERE tm.tenant_id = ? AND tm.model_id = ?',
      )
      .bind(tenantId, modelId),
    db.prepare(`SELECT * FROM lambda_policies WHERE tenant_id = ? AND model_id IN ('*', ?)`).bind(tenantId, modelId),
    db.prepare(`SELECT * FROM presets WHERE tenant_id = ? AND model_id IN ('*', ?)`).bind(tenantId, modelId),
    db
      .prepare(`SELECT * FROM user_preferences WHERE tenant_id = ? AND user_id = ? AND model_id IN ('*', ?)`)
      .bind(tenantId, userId ?? '', modelId),
  ]);
  return {
    model: (model!.results as NonNullable<RequestContextRows['model']>[])[0] ?? null,
    policies: policies!.results as PolicyRow[],
    presets: presets!.results as PresetRow[],
    preferences: userId === null ? [] : (preferences!.results as PreferenceRow[]),
  };
}

/** The 404 for a request context without a model: not in the catalogue and not granted are not told apart. */
export function modelNotFound(modelId: string): ApiError {
  return notFound(
    `the model \`${modelId}\` does not exist or you do not have access to it; GET /v1/models lists yours`,
    'model_not_found',
    'model',
  );
}
