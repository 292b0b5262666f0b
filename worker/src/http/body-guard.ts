/**
 * Every request body is settled before its request ends, whichever way the route answered (401, 404, 405, a
 * health check, an error, a success): a body nobody read is cancelled, so no undrained body is left for the
 * runtime (under `wrangler dev` an undrained body of a client that hung up took the local edge down). A body
 * declared larger than MAX_BODY_BYTES is refused with 413 before any of it is read.
 */
import type { MiddlewareHandler } from 'hono';
import { payloadTooLarge } from '../../../shared/src/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { errorResponse } from './error-response.ts';

const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/**
 * Cancels `request`'s body unless it was read or cancelled already. Never throws: the body of a client that went
 * away (or sent fewer bytes than it declared) fails to read, and that is no error of this request's answer.
 */
export async function settleBody(request: Request): Promise<void> {
  const body = request.body;
  if (body === null || request.bodyUsed) return;
  try {
    // a reader left locked by a failed read cannot be cancelled through the stream; that stream is errored already
    if (!body.locked) await body.cancel();
  } catch {
    // the client is gone: nothing left to drain
  }
}

/** MAX_BODY_BYTES, read on its own so that a broken other var does not take health checks down with it. */
function maxBodyBytes(env: Env): number {
  const n = Number(env.MAX_BODY_BYTES);
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_BODY_BYTES;
}

/** Middleware: 413 for a declared oversized body, and the body settled after the answer. */
export function bodyGuard(): MiddlewareHandler<AppEnv> {
  return async function bodyGuardMiddleware(c, next) {
    try {
      const declared = Number(c.req.header('content-length') ?? NaN);
      const maxBytes = maxBodyBytes(c.env);
      if (Number.isFinite(declared) && declared > maxBytes) {
        // the connection cannot carry another request after a body that was never read
        c.header('connection', 'close');
        return errorResponse(c, payloadTooLarge(maxBytes));
      }
      await next();
    } finally {
      await settleBody(c.req.raw);
    }
  };
}
