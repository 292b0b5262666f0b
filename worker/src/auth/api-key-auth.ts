/**
 * `/v1/*` authentication: the bearer key is hashed and looked up in D1 — through the per-isolate read cache
 * (db/read-cache.ts), so a warm key costs no D1 read and a revoked key is refused within `READ_CACHE_TTL_MS`.
 * Missing, unknown and revoked keys are 401s with different messages (a revoked key is told it was revoked, which
 * reveals nothing to someone without it).
 */
import type { MiddlewareHandler } from 'hono';
import { authenticationError } from '../../../shared/src/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { findKeyByHash } from '../db/api-keys.ts';
import { cachedRead } from '../db/read-cache.ts';
import { bearerToken } from './bearer.ts';
import { hashApiKey } from './secrets.ts';

/** Middleware: sets `c.var.auth` or throws a 401. */
export function apiKeyAuth(): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuthMiddleware(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw authenticationError('missing API key: send "Authorization: Bearer <key>"', 'missing_api_key');
    const hash = await hashApiKey(token);
    const row = await cachedRead(c.env, `key:${hash}`, () => findKeyByHash(c.env.DB, hash));
    if (row === null)
      throw authenticationError('invalid API key: check the key, or ask your admin for a new one', 'invalid_api_key');
    if (row.revoked_at !== null)
      throw authenticationError('this API key has been revoked; ask your admin for a new one', 'revoked_api_key');
    c.set('auth', {
      keyId: row.id,
      tenantId: row.tenant_id,
      tenantGeneration: row.tenant_generation,
      boundUser: row.user_id,
      tenantRequestsPerMinute: row.tenant_rpm,
      tenantTokensPerMinute: row.tenant_tpm,
      keyRequestsPerMinute: row.requests_per_minute,
      keyTokensPerMinute: row.tokens_per_minute,
      cacheTtlSeconds: row.cache_ttl_seconds,
      rateLimitFailOpen: row.rate_limit_fail_mode === 'open',
    });
    await next();
  };
}
