/** D1 access to API keys. The secret is never stored or returned: rows carry its hash and a display prefix. */

/** A key joined with its tenant's limits, for authentication. */
export interface KeyAuthRow {
  id: string;
  tenant_id: string;
  revoked_at: number | null;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  tenant_rpm: number;
  tenant_tpm: number;
  cache_ttl_seconds: number;
  tenant_generation: string;
  /** The one end user the key may act as; null = any. */
  user_id: string | null;
  /** The tenant's choice when the rate limiter is unreachable (migration 0005). */
  rate_limit_fail_mode: 'open' | 'closed';
}

/** A key as the admin API lists it. */
export interface KeyRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  /** The one end user the key may act as (`user` field, x-realign-user); null = any user of the tenant. */
  user: string | null;
  created_at: number;
  revoked_at: number | null;
}

const KEY_COLUMNS =
  'id, tenant_id, name, prefix, requests_per_minute, tokens_per_minute, user_id AS user, created_at, revoked_at';

/** The key with this hash and its tenant, or null. */
export function findKeyByHash(db: D1Database, keyHash: string): Promise<KeyAuthRow | null> {
  return db
    .prepare(
      `SELECT k.id, k.tenant_id, k.revoked_at, k.requests_per_minute, k.tokens_per_minute, k.user_id,
              t.requests_per_minute AS tenant_rpm, t.tokens_per_minute AS tenant_tpm, t.cache_ttl_seconds, t.generation AS tenant_generation,
              t.rate_limit_fail_mode
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.key_hash = ?`,
    )
    .bind(keyHash)
    .first<KeyAuthRow>();
}

/** Stores a new key (by hash). */
export async function insertKey(db: D1Database, row: Omit<KeyRow, 'revoked_at'> & { key_hash: string }): Promise<void> {
  await db
    .prepare(
      `INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, requests_per_minute, tokens_per_minute, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      row.id,
      row.tenant_id,
      row.name,
      row.key_hash,
      row.prefix,
      row.requests_per_minute,
      row.tokens_per_minute,
      row.user,
      row.created_at,
    )
    .run();
}

/** A tenant's keys, newest first. */
export async function listKeys(db: D1Database, tenantId: string): Promise<KeyRow[]> {
  const r = await db
    .prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = ? ORDER BY created_at DESC, id`)
    .bind(tenantId)
    .all<KeyRow>();
  return r.results;
}

/** Marks a key revoked; returns the updated row, or null when the tenant has no such key. */
export function revokeKey(db: D1Database, tenantId: string, keyId: string, now: number): Promise<KeyRow | null> {
  return db
    .prepare(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ? RETURNING ${KEY_COLUMNS}`)
    .bind(now, tenantId, keyId)
    .first<KeyRow>();
}
