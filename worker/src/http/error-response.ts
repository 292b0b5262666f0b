/**
 * The one place where failures become responses: an {@link ApiError} is sent as its OpenAI body with its status
 * (and `Retry-After`); anything else is logged and answered with a generic 500 that leaks nothing. A known path
 * asked with another method is a 405 with `Allow`, an unknown one a 404.
 */
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { allowedMethods, methodNotAllowed, type RouteEntry } from '../../../shared/src/allowed-methods.ts';
import { ApiError, notFound, toApiError } from '../../../shared/src/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { HEADERS } from '../../../shared/src/headers.ts';

/** Answers `error` as JSON; headers already set on `c` (request id, rate limits, λ) are kept. */
export function errorResponse(c: Context<AppEnv>, error: ApiError): Response {
  if (error.retryAfterSeconds !== undefined)
    c.header(HEADERS.retryAfter, String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  return c.json(error.toBody(), error.status as ContentfulStatusCode);
}

/**
 * A D1 write that lost a race: the tenant (or model) it refers to was deleted between the request's own check
 * and its write. That is the caller's conflict to retry, not a server fault.
 */
function isForeignKeyFailure(err: unknown): boolean {
  return err instanceof Error && err.message.includes('FOREIGN KEY constraint failed');
}

/** `app.onError`: maps thrown values to responses. */
export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (isForeignKeyFailure(err)) {
    return errorResponse(
      c,
      new ApiError(409, 'the tenant or model this request refers to was deleted while it ran; check it exists and retry', {
        type: 'invalid_request_error',
        code: 'conflict',
      }),
    );
  }
  if (!(err instanceof ApiError)) {
    console.error(
      JSON.stringify({
        level: 'error',
        msg: 'unhandled error',
        requestId: c.get('requestId'),
        error: err instanceof Error ? err.stack : String(err),
      }),
    );
  }
  return errorResponse(c, toApiError(err));
};

/**
 * `app.notFound` for an app with `routes` (Hono's `app.routes`): a 405 with `Allow` when other methods are routed on
 * the path, else an OpenAI-style 404 naming the route.
 */
export function notFoundHandler(routes: readonly RouteEntry[]): NotFoundHandler<AppEnv> {
  return (c) => {
    const path = new URL(c.req.url).pathname;
    const allowed = allowedMethods(routes, path);
    if (allowed.length > 0) {
      c.header('allow', allowed.join(', '));
      return errorResponse(c, methodNotAllowed(c.req.method, path, allowed));
    }
    return errorResponse(
      c,
      notFound(
        `no route for ${c.req.method} ${path}; see /v1/chat/completions, /v1/completions, /v1/logits, /v1/models`,
        'unknown_route',
      ),
    );
  };
}
