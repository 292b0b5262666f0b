/**
 * The caller side of the rate limiter: builds the scopes of a key and its tenant, asks the tenant's Durable
 * Object, and later corrects the token estimate.
 */
import { invalidRequest, rateLimited, type ApiError } from '../../../shared/src/errors.ts';
import type { AuthContext } from '../auth/auth-context.ts';
import type { AcquireResult, ScopeLimits } from './limits.ts';
import { formatDuration } from './rate-limit-headers.ts';

/** The tenant's scope, and the key's when it has limits of its own. */
export function scopesOf(auth: AuthContext): ScopeLimits[] {
  const scopes: ScopeLimits[] = [
    { scope: 'tenant', requestsPerMinute: auth.tenantRequestsPerMinute, tokensPerMinute: auth.tenantTokensPerMinute },
  ];
  if (auth.keyRequestsPerMinute !== null || auth.keyTokensPerMinute !== null) {
    scopes.push({
      scope: `key:${auth.keyId}`,
      requestsPerMinute: auth.keyRequestsPerMinute ?? auth.tenantRequestsPerMinute,
      tokensPerMinute: auth.keyTokensPerMinute ?? auth.tenantTokensPerMinute,
    });
  }
  return scopes;
}

/**
 * The tenant's rate limiter: named by the tenant's generation, not its id, so a tenant created again under a
 * deleted one's id never inherits its buckets (or its debt).
 */
export function limiterOf(env: Env, tenantGeneration: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(tenantGeneration));
}

/** Charges one request and `tokens` estimated tokens. */
export function acquire(env: Env, auth: AuthContext, tokens: number): Promise<AcquireResult> {
  return limiterOf(env, auth.tenantGeneration).acquire(scopesOf(auth), tokens);
}

/** Corrects the token charge by `delta` (real − estimate). */
export async function settleTokens(env: Env, auth: AuthContext, delta: number): Promise<void> {
  if (delta !== 0) await limiterOf(env, auth.tenantGeneration).settle(scopesOf(auth), delta);
}

/** Drops a deleted tenant generation's buckets (its limiter is unreachable anyway; this frees its storage). */
export async function forgetLimiter(env: Env, tenantGeneration: string): Promise<void> {
  await limiterOf(env, tenantGeneration).forget();
}

/**
 * The error for a refused acquire: a 400 when the request costs more tokens than a whole bucket holds (waiting
 * never helps; it is refused, not banked as debt), else the 429 naming the exhausted dimension and when to retry.
 */
export function admissionError(r: AcquireResult, tokens: number, param: string | null): ApiError {
  if (r.oversized !== null) {
    return invalidRequest(
      `this request needs an estimated ${tokens} tokens, more than the ${r.oversized.scope === 'tenant' ? "tenant's" : "API key's"} limit of ${r.oversized.tokensPerMinute} tokens per minute; ` +
        'lower `max_tokens` (or `n`, or the input), or ask your admin for a higher limit',
      param,
      'exceeds_token_limit',
    );
  }
  return rateLimitError(r);
}

/** The 429 for a refused acquire, naming the exhausted dimension and when to retry. */
export function rateLimitError(r: AcquireResult): ReturnType<typeof rateLimited> {
  const which = r.limitedBy === 'tokens' ? 'tokens per minute' : 'requests per minute';
  return rateLimited(`rate limit reached (${which}); retry in ${formatDuration(r.retryAfterMs)}`, r.retryAfterMs / 1000);
}
