/** D1 access to the model catalogue and to which tenant may use which model. */

/** A catalogue entry. */
export interface ModelRow {
  id: string;
  default_lambda: number;
  description: string;
  /** Tokens of context the backends serve the model with (prompt + completion); null = unknown to the edge. */
  context_length: number | null;
  /** JSON array of the model's named adapters (the first is its default), or null when the edge is not told. */
  adapters: string | null;
  created_at: number;
}

/** Creates or updates a catalogue entry. */
export async function upsertModel(db: D1Database, row: ModelRow): Promise<ModelRow> {
  return (await db
    .prepare(
      `INSERT INTO models (id, default_lambda, description, context_length, adapters, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET default_lambda = excluded.default_lambda, description = excluded.description,
         context_length = excluded.context_length, adapters = excluded.adapters
       RETURNING *`,
    )
    .bind(row.id, row.default_lambda, row.description, row.context_length, row.adapters, row.created_at)
    .first<ModelRow>())!;
}

/** The whole catalogue. */
export async function listModels(db: D1Database): Promise<ModelRow[]> {
  return (await db.prepare('SELECT * FROM models ORDER BY id').all<ModelRow>()).results;
}

/** Removes a model from the catalogue (and, by cascade, from every tenant); false when it was not there. */
export async function deleteModel(db: D1Database, id: string): Promise<boolean> {
  // `RETURNING`, not `meta.changes`: D1 counts the cascaded grants in the change count
  return (await db.prepare('DELETE FROM models WHERE id = ? RETURNING id').bind(id).first()) !== null;
}

/** Lets a tenant use a model; false when the model is not in the catalogue. */
export async function grantModel(db: D1Database, tenantId: string, modelId: string, now: number): Promise<boolean> {
  const r = await db
    .prepare(
      `INSERT INTO tenant_models (tenant_id, model_id, created_at) SELECT ?, id, ? FROM models WHERE id = ? ON CONFLICT DO NOTHING RETURNING model_id`,
    )
    .bind(tenantId, now, modelId)
    .first();
  if (r !== null) return true;
  return (await db.prepare('SELECT 1 FROM models WHERE id = ?').bind(modelId).first()) !== null;
}

/** Takes a model away from a tenant. */
export async function revokeModel(db: D1Database, tenantId: string, modelId: string): Promise<boolean> {
  return (
    (await db
      .prepare('DELETE FROM tenant_models WHERE tenant_id = ? AND model_id = ? RETURNING model_id')
      .bind(tenantId, modelId)
      .first()) !== null
  );
}

/** The models a tenant may use, with their catalogue data. */
export async function listTenantModels(db: D1Database, tenantId: string): Promise<(ModelRow & { granted_at: number })[]> {
  const r = await db
    .prepare(
      `SELECT m.id, m.default_lambda, m.description, m.context_length, m.adapters, m.created_at, tm.created_at AS granted_at
         FROM tenant_models tm JOIN models m ON m.id = tm.model_id WHERE tm.tenant_id = ? ORDER BY m.id`,
    )
    .bind(tenantId)
    .all<ModelRow & { granted_at: number }>();
  return r.results;
}
