/** Reads a request body as JSON with a size limit (see shared/src/read-body.ts). */
import { ApiError, invalidRequest } from '../../../shared/src/errors.ts';
import { parseJsonText } from '../../../shared/src/parse-request.ts';
import { readBodyText } from '../../../shared/src/read-body.ts';

/**
 * The body's text. A body that fails while it is read — the client sent fewer bytes than it declared and hung up,
 * or its connection broke — is the client's ending, not a server error: a 400 that nobody may be left to read.
 */
async function bodyText(request: Request, maxBytes: number): Promise<string> {
  try {
    return await readBodyText(request, maxBytes);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw invalidRequest(
      'the request body ended before its declared length (the connection broke); send the whole body',
      null,
      'incomplete_body',
    );
  }
}

/** The body parsed as JSON (any JSON value; the schema decides what is allowed). Throws 413/400 ApiErrors. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const text = await bodyText(request, maxBytes);
  if (text.trim() === '') throw invalidRequest('request body is empty; send a JSON object', null, 'invalid_json');
  const json = parseJsonText(text);
  if (json instanceof Error) throw json;
  return json;
}
