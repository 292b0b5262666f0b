/** D1 access to λ policy rows (per tenant and model; model `*` = the tenant's default for every model). */

/** A stored policy row; NULL columns inherit (see policy/build-policy.ts). */
export interface PolicyRow {
  tenant_id: string;
  model_id: string;
  min_lambda: number | null;
  max_lambda: number | null;
  allow_explicit: number | null;
  out_of_range: 'clamp' | 'reject' | null;
  default_preset: string | null;
  /** JSON array of the adapters the tenant may use (NULL inherits; no row says: all). */
  allowed_adapters: string | null;
  /** JSON `{"name": {"min_lambda"?, "max_lambda"?}}`: each adapter's own λ bounds (NULL inherits). */
  adapter_ranges: string | null;
  updated_at: number;
}

/** Creates or replaces a policy row. */
export async function upsertPolicy(db: D1Database, row: PolicyRow): Promise<PolicyRow> {
  return (await db
    .prepare(
      `INSERT INTO lambda_policies (tenant_id, model_id, min_lambda, max_lambda, allow_explicit, out_of_range, default_preset,
         allowed_adapters, adapter_ranges, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, model_id) DO UPDATE SET min_lambda = excluded.min_lambda, max_lambda = excluded.max_lambda,
         allow_explicit = excluded.allow_explicit, out_of_range = excluded.out_of_range, default_preset = excluded.default_preset,
         allowed_adapters = excluded.allowed_adapters, adapter_ranges = excluded.adapter_ranges, updated_at = excluded.updated_at
       RETURNING *`,
    )
    .bind(
      row.tenant_id,
      row.model_id,
      row.min_lambda,
      row.max_lambda,
      row.allow_explicit,
      row.out_of_range,
      row.default_preset,
      row.allowed_adapters,
      row.adapter_ranges,
      row.updated_at,
    )
    .first<PolicyRow>())!;
}

/** A tenant's policy rows. */
export async function listPolicies(db: D1Database, tenantId: string): Promise<PolicyRow[]> {
  return (await db.prepare('SELECT * FROM lambda_policies WHERE tenant_id = ? ORDER BY model_id').bind(tenantId).all<PolicyRow>())
    .results;
}

/** Deletes one policy row. */
export async function deletePolicy(db: D1Database, tenantId: string, modelId: string): Promise<boolean> {
  return (
    (await db
      .prepare('DELETE FROM lambda_policies WHERE tenant_id = ? AND model_id = ? RETURNING model_id')
      .bind(tenantId, modelId)
      .first()) !== null
  );
}
