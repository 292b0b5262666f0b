/**
 * Gives every request an id of the edge's own and every response an `x-request-id` header with it. The id is
 * always generated here: a client's id is not unique and not the client's to choose for the usage row. A client's
 * own id (`x-client-request-id`, as OpenAI's SDKs send it, else `x-request-id`) is kept beside it when short and
 * plain — echoed as `x-client-request-id` and stored in the usage row's `client_request_id` — so logs on both
 * sides line up.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { HEADERS } from '../../../shared/src/headers.ts';

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
    const given = c.req.header(HEADERS.clientRequestId) ?? c.req.header(HEADERS.requestId);
    const clientId = given !== undefined && CLIENT_ID.test(given) ? given : null;
    const id = `req_${crypto.randomUUID().replaceAll('-', '')}`;
    c.set('requestId', id);
    c.set('clientRequestId', clientId);
    const headers: Record<string, string> = {
      [HEADERS.requestId]: id,
      ...(clientId === null ? {} : { [HEADERS.clientRequestId]: clientId }),
    };
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    await next();
    if (Object.entries(headers).some(([k, v]) => c.res.headers.get(k) !== v)) c.res = withHeaders(c.res, headers);
  };
}
