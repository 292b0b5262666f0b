/** Reads a request body once: at most `maxBytes` (else 413), valid UTF-8 (else 400); see shared/src/read-body.ts. */
import type { MiddlewareHandler } from 'hono';
import { readBodyText } from '../../../shared/src/read-body.ts';
import type { BackendEnv } from './http-types.ts';

/** The body-reading middleware. */
export function readBody(maxBytes: number): MiddlewareHandler<BackendEnv> {
  return async function readBody(c, next) {
    c.set('body', await readBodyText(c.req.raw, maxBytes));
    return next();
  };
}
