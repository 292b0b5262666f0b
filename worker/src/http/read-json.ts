/**
 * Reads a request body as JSON with a size limit. The limit is enforced while reading (a lying or missing
 * Content-Length cannot get past it), and the bytes must be valid UTF-8.
 */
import { invalidRequest, payloadTooLarge } from '../../../shared/src/errors.ts';
import { parseJsonText } from '../../../shared/src/parse-request.ts';

/** The body's text, or a thrown 413 past `maxBytes` / 400 for invalid UTF-8. */
export async function readText(request: Request, maxBytes: number): Promise<string> {
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

/** The body parsed as JSON (any JSON value; the schema decides what is allowed). Throws 413/400 ApiErrors. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const text = await readText(request, maxBytes);
  if (text.trim() === '') throw invalidRequest('request body is empty; send a JSON object', null, 'invalid_json');
  const json = parseJsonText(text);
  if (json instanceof Error) throw json;
  return json;
}
