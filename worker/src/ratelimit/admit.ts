/**
 * The caller side of the rate limiter: builds the scopes of a key and its tenant, asks the tenant's Durable
 * Object, and later corrects the token estimate.
 */
import { invalidRequest, rateLimited, serviceUnavailable, type ApiError } from '../../../shared/src/errors.ts';
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

/** An admission without the limiter (it could not be reached and the tenant fails open): no bucket was charged. */
function unmetered(): AcquireResult {
  const none = { limit: 0, remaining: 0, resetMs: 0 };
  return { allowed: true, retryAfterMs: 0, limitedBy: null, oversized: null, requests: none, tokens: none, unmetered: true };
}

/**
 * Charges one request and `tokens` estimated tokens: the request's one Durable Object call (settlement happens
 * later, per batch, in the usage consumer). When the limiter cannot be reached (the call throws), the tenant's
 * `rate_limit_fail_mode` decides: `closed` → a 503 `rate_limiter_unavailable` with `Retry-After: 1`; `open` → the
 * request is admitted unmetered (no rate-limit headers), and the failure is logged.
 */
export async function acquire(env: Env, auth: AuthContext, tokens: number): Promise<AcquireResult> {
  try {
    return await limiterOf(env, auth.tenantGeneration).acquire(scopesOf(auth), tokens);
  } catch (e) {
    console.error(
      JSON.stringify({
        level: 'error',
        msg: 'rate limiter unreachable',
        tenant: auth.tenantId,
        failMode: auth.rateLimitFailOpen ? 'open' : 'closed',
        error: String(e),
      }),
    );
    if (auth.rateLimitFailOpen) return unmetered();
    throw serviceUnavailable('the rate limiter is unreachable; retry in a second', 1, 'rate_limiter_unavailable');
  }
}

/** Corrects the token charge by `delta` (real − estimate). */
export async function settleTokens(env: Env, auth: AuthContext, delta: number): Promise<void> {
  if (delta !== 0) await limiterOf(env, auth.tenantGeneration).settle(scopesOf(auth), delta);
}

/** One correction of a batch: the scopes of a key and its tenant, and real − estimate. */
export interface Settlement {
  scopes: ScopeLimits[];
  delta: number;
}

/** Applies many corrections of one tenant generation with one Durable Object call (the usage consumer's, per batch). */
export async function settleMany(env: Env, tenantGeneration: string, settlements: Settlement[]): Promise<void> {
  const nonZero = settlements.filter((s) => s.delta !== 0 && Number.isFinite(s.delta));
  if (nonZero.length > 0) await limiterOf(env, tenantGeneration).settleMany(nonZero);
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
