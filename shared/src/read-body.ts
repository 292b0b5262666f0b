/**
 * Reads a request body once, for both halves (web-standard `Request`, no runtime-specific API): at most
 * `maxBytes`, enforced while reading so that a lying or missing Content-Length cannot get past it, and valid UTF-8.
 */
import { invalidRequest, payloadTooLarge } from './errors.ts';

/** The body's text; throws a 413 ApiError past `maxBytes` and a 400 for invalid UTF-8. */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) throw payloadTooLarge(maxBytes);
  if (request.body === null) return '';
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw payloadTooLarge(maxBytes);
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalidRequest('request body is not valid UTF-8; send JSON encoded as UTF-8', null, 'invalid_encoding');
  }
}
