/**
 * Whose failure a backend's error answer is: this one request's, or the backend's. The edge decides with it whether
 * a backend leaves rotation (for every tenant, for a cooldown) and whether a request is sent to another backend
 * (worker/src/routing/forward.ts, worker/src/pipeline/respond.ts) — so one request's failure must never read as the
 * backend's: it would take a healthy backend away from everybody and run the failing request again elsewhere.
 *
 * The backend keeps one rule for its 5xx answers (gpu-backend/src/server/engine-error.ts):
 *   - 500 `server_error`: this request failed on a backend that otherwise works — its engine run or its own row
 *     failed (`engine_error`, `sequence_failed`), no token could be sampled from its logits (`non_finite_logits`),
 *     the engine could not build its job (`invalid_job`), or it hit a bug (`internal_error`). Another backend of the
 *     same build would most likely fail it the same way, and other requests are not affected.
 *   - 503 `backend_error`: the backend cannot take work now — not ready, a model still loading or failed to load,
 *     the tokenizer or engine gone, shutting down. Another backend may well serve the request.
 * Everything the backend's app did not write — a 5xx without its error body (a proxy in front of it, a crash), a
 * 502/504, any status other than 500 — is taken as the backend's.
 */
import { isErrorBody, type ErrorBody } from './errors.ts';

/** `request`: this request failed on a healthy backend; `backend`: the backend cannot take work now. */
export type FailureScope = 'request' | 'backend';

/** The scope of a backend's answer with `status` ≥ 500 and `body` (its parsed error JSON, or whatever it sent). */
export function answerFailureScope(status: number, body: unknown): FailureScope {
  return status === 500 && isErrorBody(body) && body.error.type === 'server_error' ? 'request' : 'backend';
}

/**
 * The scope of an error event a backend sent in a stream (its status, 200, went out before). The event carries the
 * type of the status it stands for: `backend_error` (503: the engine gone, shutting down) is the backend's; any
 * other type (`server_error`, 500: this request's engine run, row or logits failed) is this request's.
 */
export function streamErrorScope(body: ErrorBody): FailureScope {
  return body.error.type === 'backend_error' ? 'backend' : 'request';
}
