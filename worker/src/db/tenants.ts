/** D1 access to tenants. */

/** A tenant row. */
export interface TenantRow {
  id: string;
  name: string;
  requests_per_minute: number;
  tokens_per_minute: number;
  cache_ttl_seconds: number;
  created_at: number;
  /**
   * Random id of this creation of the tenant. Cache keys, the rate limiter and usage rows are keyed by it, so a
   * tenant created again under a deleted one's id starts with nothing of it.
   */
  generation: string;
  /** When the rate limiter (Durable Object) cannot be reached: `closed` refuses with 503, `open` admits (migration 0005). */
  rate_limit_fail_mode: 'open' | 'closed';
}

/** Fields an admin may change. */
export type TenantUpdate = Partial<
  Pick<TenantRow, 'name' | 'requests_per_minute' | 'tokens_per_minute' | 'cache_ttl_seconds' | 'rate_limit_fail_mode'>
>;

/** A fresh tenant generation (128 random bits, hex). */
export function newGeneration(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Creates a tenant; returns false when the id exists. Success is read from `RETURNING`, never from the change
 * count, which D1 reports with triggered and cascaded rows included.
 */
export async function insertTenant(db: D1Database, row: TenantRow): Promise<boolean> {
  const r = await db
    .prepare(
      `INSERT INTO tenants (id, name, requests_per_minute, tokens_per_minute, cache_ttl_seconds, created_at, generation, rate_limit_fail_mode)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id`,
    )
    .bind(
      row.id,
      row.name,
      row.requests_per_minute,
      row.tokens_per_minute,
      row.cache_ttl_seconds,
      row.created_at,
      row.generation,
      row.rate_limit_fail_mode,
    )
    .first();
  return r !== null;
}

/** One tenant or null. */
export function getTenant(db: D1Database, id: string): Promise<TenantRow | null> {
  return db.prepare('SELECT * FROM tenants WHERE id = ?').bind(id).first<TenantRow>();
}

/** All tenants by id. */
export async function listTenants(db: D1Database): Promise<TenantRow[]> {
  return (await db.prepare('SELECT * FROM tenants ORDER BY id').all<TenantRow>()).results;
}

/** Applies `update`; returns the new row or null when the tenant does not exist. */
export function updateTenant(db: D1Database, id: string, update: TenantUpdate): Promise<TenantRow | null> {
  const keys = Object.keys(update) as (keyof TenantUpdate)[];
  if (keys.length === 0) return getTenant(db, id);
  const set = keys.map((k) => `${k} = ?`).join(', ');
  return db
    .prepare(`UPDATE tenants SET ${set} WHERE id = ? RETURNING *`)
    .bind(...keys.map((k) => update[k]), id)
    .first<TenantRow>();
}

/**
 * Deletes a tenant and (by cascade) its keys, grants, policies, presets and preferences; returns the deleted row
 * (null when there was none). Usage rows stay, under the deleted generation. (`meta.changes` would count the
 * cascaded rows too, so the answer comes from `RETURNING`.)
 */
export function deleteTenant(db: D1Database, id: string): Promise<TenantRow | null> {
  return db.prepare('DELETE FROM tenants WHERE id = ? RETURNING *').bind(id).first<TenantRow>();
}
