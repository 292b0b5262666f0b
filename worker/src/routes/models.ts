/**
 * `GET /v1/models`: the models the caller's tenant may use, in OpenAI's list shape (plus each model's default λ and,
 * when the catalogue lists them, its named adapters).
 * `GET /v1/models/{id}`: one of them (OpenAI's `models.retrieve`); a model the tenant was not granted is a 404 told
 * apart from an unknown one in nothing.
 */
import type { Handler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { listTenantModels, type ModelRow } from '../db/models.ts';
import { cachedRead } from '../db/read-cache.ts';
import { modelNotFound } from '../db/request-context.ts';
import { parseAdapterList } from '../policy/build-policy.ts';

/** OpenAI's model object for a catalogue row. */
function modelObject(m: ModelRow) {
  const adapters = parseAdapterList(m.adapters);
  return {
    id: m.id,
    object: 'model',
    created: Math.floor(m.created_at / 1000),
    owned_by: 'realign',
    default_lambda: m.default_lambda,
    // the model's named adapters (the first is its default), when the catalogue lists them
    ...(adapters === undefined ? {} : { adapters }),
  };
}

/** The tenant's models, through the per-isolate read cache (db/read-cache.ts). */
function tenantModels(env: Env, tenantId: string) {
  return cachedRead(env, `models:${tenantId}`, () => listTenantModels(env.DB, tenantId));
}

/** Lists the tenant's models. */
export const listModelsHandler: Handler<AppEnv> = async function listModels(c) {
  const models = await tenantModels(c.env, c.get('auth').tenantId);
  return c.json({ object: 'list', data: models.map(modelObject) });
};

/** One of the tenant's models. */
export const retrieveModelHandler: Handler<AppEnv> = async function retrieveModel(c) {
  const id = c.req.param('model') ?? '';
  // a tenant holds a handful of models: the list it already has an index for, filtered here
  const model = (await tenantModels(c.env, c.get('auth').tenantId)).find((m) => m.id === id);
  if (model === undefined) throw modelNotFound(id);
  return c.json(modelObject(model));
};
