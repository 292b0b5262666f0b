/**
 * The contract between the halves on whose failure a 5xx is (shared/src/failure-scope.ts): every error the backend
 * turns an engine failure into (server/engine-error.ts) reads, at the edge, as this request's failure exactly when
 * it is one, and as one model's (its load, its engine: server/registry.ts) exactly when only that model is
 * affected — answered as JSON or sent as a stream's error event.
 */
import { describe, expect, it } from 'vitest';
import { serverError, serviceUnavailable, type ApiError } from '../../../shared/src/errors.ts';
import { answerFailureScope, streamErrorScope, type FailureScope } from '../../../shared/src/failure-scope.ts';
import { EngineRejection } from '../../../gpu-backend/src/engine/engine.ts';
import type { GenerateEvent } from '../../../gpu-backend/src/engine/protocol.ts';
import { failureOf, rejectionError } from '../../../gpu-backend/src/server/engine-error.ts';

const failed = (code?: string): GenerateEvent => ({
  id: 1,
  text: '',
  tokens: [],
  finish: 'error',
  ...(code === undefined ? {} : { error: { message: `failed: ${code}`, code } }),
});

/** Backend errors and whose failure they are. */
const CASES: [string, ApiError, FailureScope][] = [
  ['NaN/∞ logits of a logits job', rejectionError(new EngineRejection('every logit is NaN', 'non_finite_logits')), 'request'],
  ['a job the engine cannot build', rejectionError(new EngineRejection('bad seed', 'invalid_job')), 'request'],
  ["a row's own failure", failureOf(failed('sequence_failed')), 'request'],
  ['the failed model run of its batch', failureOf(failed('engine_error')), 'request'],
  ['NaN/∞ logits mid-generation', failureOf(failed('non_finite_logits')), 'request'],
  ['a generation failure without a code', failureOf(failed()), 'request'],
  ['a bug the request hit (the app’s generic 500)', serverError(), 'request'],
  // each model has its own engine thread: its death is that model's, not the backend's other models'
  ['the engine worker gone', rejectionError(new Error('the engine worker exited')), 'model'],
  ['cancelled by the engine', failureOf({ id: 1, text: '', tokens: [], finish: 'cancelled' }), 'backend'],
  [
    'cut by a shutdown (the engine marks it)',
    failureOf({ id: 1, text: '', tokens: [], finish: 'cancelled', error: { message: 'stopping', code: 'shutting_down' } }),
    'backend',
  ],
  ['queued work refused by a shutdown', rejectionError(new EngineRejection('stopping', 'shutting_down')), 'backend'],
  ['refused while it stops', rejectionError(new EngineRejection('cancelled before it ran', 'cancelled')), 'backend'],
  ['an engine refusal of its own state', rejectionError(new EngineRejection('stopping', 'engine_stopping')), 'backend'],
  ['shutting down', serviceUnavailable('the server is shutting down', 1, 'shutting_down'), 'backend'],
  ['a model still loading', serviceUnavailable('still loading', 5, 'model_loading'), 'model'],
  ['a model that failed to load', serviceUnavailable('failed to load', undefined, 'model_unavailable'), 'model'],
  ['a model whose engine died', serviceUnavailable('its engine is gone', 5, 'engine_unavailable'), 'model'],
];

describe('whose failure a backend 5xx is', () => {
  it.each(CASES)('%s', (_name, e, scope) => {
    expect(e.status).toBeGreaterThanOrEqual(500);
    expect(answerFailureScope(e.status, e.toBody())).toBe(scope);
    // the same error as a stream's error event (message, type and code; the status went out before)
    expect(streamErrorScope(e.toBody())).toBe(scope);
  });

  it("answers the backend's app did not write are the backend's: no error body, another 5xx, another type", () => {
    const request = serverError('this request failed', 'sequence_failed').toBody();
    expect(answerFailureScope(500, request)).toBe('request');
    expect(answerFailureScope(500, '<html>Internal Server Error</html>')).toBe('backend');
    expect(answerFailureScope(500, { error: 'boom' })).toBe('backend');
    expect(answerFailureScope(502, request)).toBe('backend');
    expect(answerFailureScope(504, request)).toBe('backend');
    expect(answerFailureScope(500, serviceUnavailable('down').toBody())).toBe('backend');
    // a model's code is the model's only in the backend's own 503 backend_error
    const gone = serviceUnavailable('its engine is gone', 5, 'engine_unavailable').toBody();
    expect(answerFailureScope(503, gone)).toBe('model');
    expect(answerFailureScope(502, gone)).toBe('backend');
    expect(answerFailureScope(500, gone)).toBe('backend');
    expect(answerFailureScope(503, { error: { ...gone.error, type: 'server_error' } })).toBe('backend');
  });
});
