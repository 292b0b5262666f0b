/** D1 access to end-user λ preferences (per tenant, user and model or `*`). */

/** A stored preference: a λ, a preset, or both (the λ wins). */
export interface PreferenceRow {
  tenant_id: string;
  user_id: string;
  model_id: string;
  lambda: number | null;
  preset: string | null;
  updated_at: number;
}

/** Creates or replaces a preference. */
export async function upsertPreference(db: D1Database, row: PreferenceRow): Promise<PreferenceRow> {
  return (await db
    .prepare(
      `INSERT INTO user_preferences (tenant_id, user_id, model_id, lambda, preset, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, user_id, model_id) DO UPDATE SET lambda = excluded.lambda, preset = excluded.preset, updated_at = excluded.updated_at
       RETURNING *`,
    )
    .bind(row.tenant_id, row.user_id, row.model_id, row.lambda, row.preset, row.updated_at)
    .first<PreferenceRow>())!;
}

/** A tenant's preferences, optionally for one user. */
export async function listPreferences(db: D1Database, tenantId: string, userId?: string): Promise<PreferenceRow[]> {
  const q =
    userId === undefined
      ? db.prepare('SELECT * FROM user_preferences WHERE tenant_id = ? ORDER BY user_id, model_id').bind(tenantId)
      : db.prepare('SELECT * FROM user_preferences WHERE tenant_id = ? AND user_id = ? ORDER BY model_id').bind(tenantId, userId);
  return (await q.all<PreferenceRow>()).results;
}

/** Deletes one preference. */
export async function deletePreference(db: D1Database, tenantId: string, userId: string, modelId: string): Promise<boolean> {
  return (
    (await db
      .prepare('DELETE FROM user_preferences WHERE tenant_id = ? AND user_id = ? AND model_id = ? RETURNING user_id')
      .bind(tenantId, userId, modelId)
      .first()) !== null
  );
}
