/**
 * Whose failure a backend's error answer is: this one request's, one model's on that backend, or the backend's. The
 * edge decides with it what leaves rotation (for a cooldown) and whether a request is sent to another backend
 * (worker/src/routing/forward.ts, worker/src/pipeline/respond.ts) — so one request's failure must never read as the
 * backend's: it would take a healthy backend away from everybody and run the failing request again elsewhere; and
 * one model's failure must not read as the backend's: its other models' tenants would lose a backend that serves them.
 *
 * The backend keeps one rule for its 5xx answers (gpu-backend/src/server/engine-error.ts, registry.ts):
 *   - 500 `server_error`: this request failed on a backend that otherwise works — its engine run or its own row
 *     failed (`engine_error`, `sequence_failed`), no token could be sampled from its logits (`non_finite_logits`),
 *     the engine could not build its job (`invalid_job`), or it hit a bug (`internal_error`). Another backend of the
 *     same build would most likely fail it the same way, and other requests are not affected.
 *   - 503 `backend_error` with a model's code ({@link MODEL_SCOPED_CODES}): the requested model cannot serve there
 *     now — still loading, failed to load, its engine gone (each model has its own load and engine thread). The
 *     backend's other models are not affected; another backend may well serve this one.
 *   - any other 503 `backend_error`: the backend cannot take work now — not ready, shutting down. Another backend
 *     may well serve the request.
 * Everything the backend's app did not write — a 5xx without its error body (a proxy in front of it, a crash), a
 * 502/504, any status other than 500 or 503 — is taken as the backend's.
 */
import { isErrorBody, type ErrorBody } from './errors.ts';

/**
 * `request`: this request failed on a healthy backend; `model`: the requested model cannot serve on that backend
 * now (its other models can); `backend`: the backend cannot take work now.
 */
export type FailureScope = 'request' | 'model' | 'backend';

/** The codes of the backend's 503 `backend_error` answers that speak for the requested model only. */
export const MODEL_SCOPED_CODES: ReadonlySet<string> = new Set(['model_loading', 'model_unavailable', 'engine_unavailable']);

function modelScoped(body: ErrorBody): boolean {
  return body.error.type === 'backend_error' && MODEL_SCOPED_CODES.has(body.error.code ?? '');
}

/** The scope of a backend's answer with `status` ≥ 500 and `body` (its parsed error JSON, or whatever it sent). */
export function answerFailureScope(status: number, body: unknown): FailureScope {
  if (!isErrorBody(body)) return 'backend';
  if (status === 500 && body.error.type === 'server_error') return 'request';
  if (status === 503 && modelScoped(body)) return 'model';
  return 'backend';
}

/**
 * The scope of an error event a backend sent in a stream (its status, 200, went out before). The event carries the
 * type of the status it stands for: `backend_error` (503) is the model's when its code is a model's (the engine
 * gone), else the backend's (shutting down); any other type (`server_error`, 500: this request's engine run, row or
 * logits failed) is this request's.
 */
export function streamErrorScope(body: ErrorBody): FailureScope {
  if (body.error.type !== 'backend_error') return 'request';
  return modelScoped(body) ? 'model' : 'backend';
}
