/**
 * CORS for the public `/v1` API. Any origin may call it from a browser: the API authenticates with a bearer key
 * that the page itself must hold (no cookies, no ambient credentials), so allowing an origin grants it nothing it
 * could not do from a server. Credentials mode is never allowed, and `/admin` gets no CORS headers at all (a
 * browser page can never read an admin answer or pass a preflight for one).
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { HEADERS } from './header-names.ts';
import { withHeaders } from './request-id.ts';

/** Request headers a browser may send to `/v1` (beyond the CORS-safelisted ones). */
export const CORS_ALLOWED_HEADERS = ['authorization', 'content-type', 'cache-control', HEADERS.requestId, HEADERS.clientRequestId, HEADERS.user];

/** Response headers a cross-origin script may read: λ, cache, rate limits, request id. */
export const CORS_EXPOSED_HEADERS = [
  HEADERS.requestId,
  HEADERS.clientRequestId,
  HEADERS.lambda,
  HEADERS.preset,
  HEADERS.lambdaSource,
  HEADERS.lambdaClamped,
  HEADERS.cache,
  HEADERS.attempts,
  HEADERS.retryAfter,
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
];

/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * Middleware: answers preflight `OPTIONS` with 204 before authentication runs (a browser sends no key with it), and
 * adds `Access-Control-Allow-Origin: *` and the exposed headers to every other answer, errors and streams included.
 */
export function cors(): MiddlewareHandler<AppEnv> {
  return async function corsMiddleware(c, next) {
    if (c.req.method === 'OPTIONS') {
      return c.body(null, 204, {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': CORS_ALLOWED_HEADERS.join(', '),
        'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
      });
    }
    await next();
    // c.res may be a Response with immutable headers (passed through from fetch), so headers go on a copy
    c.res = withHeaders(c.res, { 'access-control-allow-origin': '*', 'access-control-expose-headers': CORS_EXPOSED_HEADERS.join(', ') });
  };
}
