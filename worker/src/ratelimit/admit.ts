/**
 * The caller side of the rate limiter: builds the scopes of a key and its tenant, asks the tenant's Durable
 * Object, and later corrects the token estimate.
 */
import { rateLimited } from '../../../shared/src/errors.ts';
import type { AuthContext } from '../auth/auth-context.ts';
import type { AcquireResult, ScopeLimits } from './limits.ts';
import { formatDuration } from './rate-limit-headers.ts';

/** The tenant's scope, and the key's when it has limits of its own. */
export function scopesOf(auth: AuthContext): ScopeLimits[] {
  const scopes: ScopeLimits[] = [{ scope: 'tenant', requestsPerMinute: auth.tenantRequestsPerMinute, tokensPerMinute: auth.tenantTokensPerMinute }];
  if (auth.keyRequestsPerMinute !== null || auth.keyTokensPerMinute !== null) {
    scopes.push({
      scope: `key:${auth.keyId}`,
      requestsPerMinute: auth.keyRequestsPerMinute ?? auth.tenantRequestsPerMinute,
      tokensPerMinute: auth.keyTokensPerMinute ?? auth.tenantTokensPerMinute,
    });
  }
  return scopes;
}

function limiter(env: Env, tenantId: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(tenantId));
}

/** Charges one request and `tokens` estimated tokens. */
export function acquire(env: Env, auth: AuthContext, tokens: number): Promise<AcquireResult> {
  return limiter(env, auth.tenantId).acquire(scopesOf(auth), tokens);
}

/** Corrects the token charge by `delta` (real − estimate). */
export async function settleTokens(env: Env, auth: AuthContext, delta: number): Promise<void> {
  if (delta !== 0) await limiter(env, auth.tenantId).settle(scopesOf(auth), delta);
}

/** The 429 for a refused acquire, naming the exhausted dimension and when to retry. */
export function rateLimitError(r: AcquireResult): ReturnType<typeof rateLimited> {
  const which = r.limitedBy === 'tokens' ? 'tokens per minute' : 'requests per minute';
  return rateLimited(`rate limit reached (${which}); retry in ${formatDuration(r.retryAfterMs)}`, r.retryAfterMs / 1000);
}
