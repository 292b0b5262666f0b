/**
 * Engine refusals and failures → the HTTP error a client should see (both generation and logits routes). The
 * status says whose failure it is, and the edge routes by it (shared/src/failure-scope.ts): 500 `server_error` for
 * this request alone on an engine that works (its run, its row, its logits, a job that cannot be built from it) —
 * the backend stays in rotation and the request is not retried elsewhere; 503 `backend_error` for the engine's
 * state — its model's engine gone (`engine_unavailable`: that model is avoided on this backend) or the backend
 * stopping (`shutting_down`: the backend is avoided) — and the request tried on another.
 */
import { ApiError, invalidRequest, rateLimited, serverError, serviceUnavailable } from '../../../shared/src/errors.ts';
import { EngineRejection } from '../engine/engine.ts';
import type { GenerateEvent } from '../engine/protocol.ts';

/**
 * The request fields an engine refusal names as OpenAI's `param`: the prompt's field (`messages`, `prompt`,
 * `input_ids`), and the one that sets how much of the KV budget the request reserves (a generation's `max_tokens`;
 * a logits job's input itself).
 */
export interface RejectionFields {
  prompt: string;
  budget: string;
}

/**
 * Maps an engine refusal to the HTTP error a client should see; a refusal of the request's own size (its prompt
 * empty or too long, its KV need over the budget) is a 400 naming the field of `fields` to blame (null without them).
 */
export function rejectionError(err: unknown, fields?: RejectionFields): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineRejection) {
    if (err.code === 'queue_full') return rateLimited(err.message, 1, 'queue_full');
    // broken weights (NaN/∞ logits) fail the same way on every retry: a server error, not "unavailable, retry"
    if (err.code === 'non_finite_logits') return serverError(err.message, err.code);
    // a job the engine cannot build from this request (e.g. a seed it cannot use): this request's failure alone
    if (err.code === 'invalid_job') return serverError(err.message, err.code);
    if (err.code === 'context_length_exceeded' || err.code === 'empty_prompt')
      return invalidRequest(err.message, fields?.prompt ?? null, err.code);
    if (err.code === 'request_too_large') return invalidRequest(err.message, fields?.budget ?? null, err.code);
    return serviceUnavailable(err.message, 1, err.code);
  }
  return serviceUnavailable(`the engine is unavailable: ${(err as Error).message}`, 5, 'engine_unavailable');
}

/**
 * The error a failed choice gives the whole request: its row's error (500), or, for a choice the engine cut, the
 * backend's state (503): `shutting_down` when the backend is stopping (the engine marks those endings), else
 * `cancelled`.
 */
export function failureOf(ev: GenerateEvent): ApiError {
  if (ev.finish === 'error') return serverError(ev.error?.message ?? 'generation failed', ev.error?.code ?? 'generation_failed');
  if (ev.error?.code === 'shutting_down') return serviceUnavailable(ev.error.message, 1, 'shutting_down');
  return serviceUnavailable('the engine cancelled this request; retry', 1, 'cancelled');
}
