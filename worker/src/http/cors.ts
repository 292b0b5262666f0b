/**
 * CORS for the public `/v1` API, on Hono's CORS middleware. Any origin may call it from a browser: the API
 * authenticates with a bearer key that the page itself must hold (no cookies, no ambient credentials), so allowing
 * an origin grants it nothing it could not do from a server. For the same reason a preflight may send whatever
 * request headers the browser asks for (`Access-Control-Request-Headers` is echoed, with `Vary` on it): OpenAI's
 * JS SDK sends its own `x-stainless-*` headers, and a fixed list refused them. Credentials mode is never allowed,
 * and `/admin` gets no CORS headers at all (a browser page can never read an admin answer or pass a preflight for
 * one).
 */
import type { MiddlewareHandler } from 'hono';
import { cors as honoCors } from 'hono/cors';
import type { AppEnv } from '../app-env.ts';
import { HEADERS } from '../../../shared/src/headers.ts';

/** Response headers a cross-origin script may read: λ, cache, rate limits, request id. */
export const CORS_EXPOSED_HEADERS = [
  HEADERS.requestId,
  HEADERS.clientRequestId,
  HEADERS.lambda,
  HEADERS.mix,
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
 * With no `allowHeaders` list Hono echoes the preflight's requested headers.
 */
export function cors(): MiddlewareHandler<AppEnv> {
  return honoCors({
    origin: '*',
    allowMethods: ['GET', 'POST', 'OPTIONS'],
    exposeHeaders: CORS_EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
    credentials: false,
  });
}
