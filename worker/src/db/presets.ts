/** D1 access to λ presets (per tenant, for one model or `*` for all; a model's own preset of a name wins). */

/** A stored preset; `sampling` is JSON of SamplingDefaults. */
export interface PresetRow {
  tenant_id: string;
  model_id: string;
  name: string;
  lambda: number;
  sampling: string;
  /** The named adapter its λ applies to, or null. */
  adapter: string | null;
  /** JSON `{"name": λ}`: a mix in place of its λ, or null. */
  mix: string | null;
  updated_at: number;
}

/** Creates or replaces a preset. */
export async function upsertPreset(db: D1Database, row: PresetRow): Promise<PresetRow> {
  return (await db
    .prepare(
      `INSERT INTO presets (tenant_id, model_id, name, lambda, sampling, adapter, mix, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, model_id, name) DO UPDATE SET lambda = excluded.lambda, sampling = excluded.sampling,
         adapter = excluded.adapter, mix = excluded.mix, updated_at = excluded.updated_at
       RETURNING *`,
    )
    .bind(row.tenant_id, row.model_id, row.name, row.lambda, row.sampling, row.adapter, row.mix, row.updated_at)
    .first<PresetRow>())!;
}

/** A tenant's presets. */
export async function listPresets(db: D1Database, tenantId: string): Promise<PresetRow[]> {
  return (await db.prepare('SELECT * FROM presets WHERE tenant_id = ? ORDER BY model_id, name').bind(tenantId).all<PresetRow>())
    .results;
}

/** Deletes one preset. */
export async function deletePreset(db: D1Database, tenantId: string, modelId: string, name: string): Promise<boolean> {
  return (
    (await db
      .prepare('DELETE FROM presets WHERE tenant_id = ? AND model_id = ? AND name = ? RETURNING name')
      .bind(tenantId, modelId, name)
      .first()) !== null
  );
}
