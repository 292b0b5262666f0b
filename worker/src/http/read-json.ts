/** Reads a request body as JSON with a size limit (see shared/src/read-body.ts). */
import { invalidRequest } from '../../../shared/src/errors.ts';
import { parseJsonText } from '../../../shared/src/parse-request.ts';
import { readBodyText } from '../../../shared/src/read-body.ts';

/** The body parsed as JSON (any JSON value; the schema decides what is allowed). Throws 413/400 ApiErrors. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const text = await readBodyText(request, maxBytes);
  if (text.trim() === '') throw invalidRequest('request body is empty; send a JSON object', null, 'invalid_json');
  const json = parseJsonText(text);
  if (json instanceof Error) throw json;
  return json;
}
