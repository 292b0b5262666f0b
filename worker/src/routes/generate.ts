/** `POST /v1/chat/completions`, `/v1/completions`, `/v1/logits`: prepare (validate, admit, resolve λ), then respond. */
import type { Handler } from 'hono';
import type { RequestKind } from '../../../shared/src/parse-request.ts';
import type { AppEnv } from '../app-env.ts';
import { prepare } from '../pipeline/prepare.ts';
import { respond } from '../pipeline/respond.ts';

/** The handler for one request kind. */
export function generateHandler(kind: RequestKind): Handler<AppEnv> {
  return async function generate(c) {
    return respond(c, await prepare(c, kind));
  };
}
