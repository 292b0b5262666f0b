/** Reads a request body once: at most `maxBytes` (else 413), valid UTF-8 (else 400). */
import type { MiddlewareHandler } from 'hono';
import { invalidRequest, payloadTooLarge } from '../../../shared/src/errors.ts';
import type { BackendEnv } from './http-types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body-reading middleware. */
export function readBody(maxBytes: number): MiddlewareHandler<BackendEnv> {
  return async function readBody(c, next) {
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) throw payloadTooLarge(maxBytes);
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = c.req.raw.body?.getReader();
    if (reader) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel();
          throw payloadTooLarge(maxBytes);
        }
        chunks.push(value);
      }
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const ch of chunks) {
      bytes.set(ch, at);
      at += ch.byteLength;
    }
    try {
      c.set('body', utf8.decode(bytes));
    } catch {
      throw invalidRequest('request body is not valid UTF-8; send JSON encoded as UTF-8', null, 'invalid_encoding');
    }
    return next();
  };
}
