import { describe, expect, it } from 'vitest';
import {
  ApiError,
  apiErrorFromResponse,
  errorBody,
  invalidRequest,
  isErrorBody,
  rateLimited,
  serviceUnavailable,
  toApiError,
} from './errors.ts';

describe('errors', () => {
  it('serialize to the OpenAI error body', () => {
    expect(invalidRequest('`top_p` must be in (0, 1], got 1.5', 'top_p').toBody()).toEqual({
      error: {
        message: '`top_p` must be in (0, 1], got 1.5',
        type: 'invalid_request_error',
        param: 'top_p',
        code: 'invalid_value',
      },
    });
    expect(rateLimited('slow down', 3)).toMatchObject({ status: 429, type: 'rate_limit_error', retryAfterSeconds: 3 });
    expect(serviceUnavailable('down')).toMatchObject({ status: 503, code: 'backend_unavailable' });
  });

  it('rebuild a backend error, and turn a body without one into a 502', () => {
    const e = apiErrorFromResponse(400, errorBody('bad λ', 'invalid_request_error', 'lambda', 'lambda_out_of_range'));
    expect(e).toMatchObject({ status: 400, message: 'bad λ', param: 'lambda', code: 'lambda_out_of_range' });
    expect(apiErrorFromResponse(500, '<html>')).toMatchObject({ status: 502, code: 'bad_backend_response' });
    expect(isErrorBody({ error: 'x' })).toBe(false);
  });

  it('never leak the message of an unexpected exception', () => {
    const e = toApiError(new Error('secret path /etc/x'));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(500);
    expect(e.message).not.toContain('secret');
  });
});
