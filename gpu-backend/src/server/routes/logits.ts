/** POST /v1/logits: one forward pass, the blended next-token distributions at several λ (the TrRa teacher signal). */
import type { Context } from 'hono';
import { lambdaFieldOf } from '../../../../shared/src/backend-request.ts';
import { ApiError } from '../../../../shared/src/errors.ts';
import { HEADERS, mixHeaderValue } from '../../../../shared/src/headers.ts';
import { parseJsonText, readRequest } from '../../../../shared/src/parse-request.ts';
import { rejectionError } from '../engine-error.ts';
import type { BackendEnv } from '../http-types.ts';
import { prepareLogits } from '../prepare/logits.ts';
import type { RouteDeps } from '../route-deps.ts';
import { piecesStream } from '../wire/json-stream.ts';
import { logitsPieces } from '../wire/logits.ts';

/** The route handler. */
export function logitsRoute(deps: RouteDeps) {
  return async function logitsHandler(c: Context<BackendEnv>): Promise<Response> {
    const parsed = readRequest('logits', parseJsonText(c.get('body')));
    if (parsed instanceof ApiError) throw parsed;
    const req = parsed.request;
    const model = deps.registry.get(req.model);
    if (model instanceof ApiError) throw model;
    // a single `lambda` (or its alias `control`) is read as `lambdas: [x]`; errors name the field the client wrote
    const lambdaField = lambdaFieldOf(c.req.header(HEADERS.lambdaField), parsed.lambdaField);
    const prep = await prepareLogits(model, req, lambdaField, deps.config.limits);
    let result;
    try {
      result = await model.engine.logits(prep.job);
    } catch (err) {
      // a logits job reserves KV for its input alone: the input is the field to blame for either size refusal
      throw rejectionError(err, { prompt: prep.inputParam, budget: prep.inputParam });
    }
    const headers = {
      'content-type': 'application/json',
      [HEADERS.lambda]: prep.lambdas.join(','),
      // the mix's result comes after the λ values' (headers.ts)
      ...(req.mix === undefined ? {} : { [HEADERS.mix]: mixHeaderValue(req.mix) }),
    };
    return c.body(piecesStream(logitsPieces(model, prep, result)), 200, headers);
  };
}
