/** `GET /v1/models`: the models the caller's tenant may use, in OpenAI's list shape (plus each model's default λ). */
import type { Handler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { listTenantModels } from '../db/models.ts';

/** Lists the tenant's models. */
export const listModelsHandler: Handler<AppEnv> = async function listModels(c) {
  const models = await listTenantModels(c.env.DB, c.get('auth').tenantId);
  return c.json({
    object: 'list',
    data: models.map((m) => ({ id: m.id, object: 'model', created: Math.floor(m.created_at / 1000), owned_by: 'realign', default_lambda: m.default_lambda })),
  });
};
