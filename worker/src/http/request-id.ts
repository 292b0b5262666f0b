/**
 * Gives every request an id and every response an `x-request-id` header. A client's own id is kept when it is
 * short and plain (so logs on both sides line up); anything else is replaced.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { HEADERS } from './header-names.ts';

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Returns a copy of `res` with `headers` set (responses from fetch() have immutable headers). */
export function withHeaders(res: Response, headers: Record<string, string>): Response {
  const out = new Response(res.body, res);
  for (const [k, v] of Object.entries(headers)) out.headers.set(k, v);
  return out;
}

/** Middleware: sets `c.var.requestId` and the response's `x-request-id`. */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const given = c.req.header(HEADERS.requestId);
    const id = given && CLIENT_ID.test(given) ? given : `req_${crypto.randomUUID().replaceAll('-', '')}`;
    c.set('requestId', id);
    c.header(HEADERS.requestId, id);
    await next();
    if (c.res.headers.get(HEADERS.requestId) !== id) c.res = withHeaders(c.res, { [HEADERS.requestId]: id });
  };
}
