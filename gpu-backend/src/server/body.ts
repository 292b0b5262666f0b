/**
 * Reads a request body once: at most `maxBytes` (else 413), within `timeoutMs` (else 408: a client that declares a
 * body and sends it slowly or never cannot hold the request open), valid UTF-8 (else 400); see
 * shared/src/read-body.ts.
 */
import type { MiddlewareHandler } from 'hono';
import { ApiError } from '../../../shared/src/errors.ts';
import { readBodyText } from '../../../shared/src/read-body.ts';
import type { BackendEnv } from './http-types.ts';

/** The 408 for a body that did not arrive in time. */
export function bodyTimeout(timeoutMs: number): ApiError {
  return new ApiError(408, `the request body did not arrive within ${timeoutMs} ms; send the whole body promptly`, {
    type: 'invalid_request_error',
    code: 'request_timeout',
  });
}

/** The body-reading middleware. */
export function readBody(maxBytes: number, timeoutMs: number): MiddlewareHandler<BackendEnv> {
  return async function readBody(c, next) {
    const reading = readBodyText(c.req.raw, maxBytes);
    // once timed out, the read fails when the connection closes; nobody waits for it any more
    reading.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(bodyTimeout(timeoutMs)), timeoutMs)));
    try {
      c.set('body', await Promise.race([reading, timeout]));
    } finally {
      clearTimeout(timer);
    }
    return next();
  };
}
