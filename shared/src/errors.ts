/**
 * Errors on the wire, OpenAI style: every failure is answered with
 * `{"error": {"message", "type", "param", "code"}}` and an HTTP status that matches `type`.
 * Code inside either half throws or returns an {@link ApiError}; one place per server turns it into a response.
 */

/** The `error.type` values realign sends, each tied to one family of HTTP statuses. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'backend_error';

/** The JSON body of every error response. `param` names the request field at fault, `code` is machine-readable. */
export interface ErrorBody {
  error: {
    message: string;
    type: ErrorType | string;
    param: string | null;
    code: string | null;
  };
}

/** Options of {@link ApiError} beyond status and message. */
export interface ApiErrorOptions {
  type: ErrorType;
  code?: string | null;
  param?: string | null;
  /** Seconds a client should wait before retrying; sent as `Retry-After` (429, 503). */
  retryAfterSeconds?: number;
}

/** A failure with its HTTP status and OpenAI-style fields; `message` says what was wrong and what to change. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, message: string, options: ApiErrorOptions) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type;
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** The wire body for this error. */
  toBody(): ErrorBody {
    return errorBody(this.message, this.type, this.param, this.code);
  }
}

/** Builds an error body without an {@link ApiError} (e.g. for an SSE error event). */
export function errorBody(
  message: string,
  type: ErrorType | string,
  param: string | null = null,
  code: string | null = null,
): ErrorBody {
  return { error: { message, type, param, code } };
}

/** True when `value` has the shape of an {@link ErrorBody} (used to read a backend's error answer). */
export function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const inner = (value as { error: unknown }).error;
  return typeof inner === 'object' && inner !== null && typeof (inner as { message?: unknown }).message === 'string';
}

/** True for an {@link ApiError} instance. */
export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError;
}

/** 400: the request is malformed or a field is out of bounds; `param` names the field. */
export function invalidRequest(message: string, param: string | null = null, code: string | null = 'invalid_value'): ApiError {
  return new ApiError(400, message, { type: 'invalid_request_error', param, code });
}

/** 401: no credentials, unknown credentials or revoked credentials. */
export function authenticationError(message: string, code: string = 'invalid_api_key'): ApiError {
  return new ApiError(401, message, { type: 'authentication_error', code });
}

/** 403: the caller is known but may not do this (e.g. an explicit λ where the tenant's policy forbids it). */
export function permissionDenied(message: string, code: string = 'permission_denied', param: string | null = null): ApiError {
  return new ApiError(403, message, { type: 'permission_error', code, param });
}

/** 404: the model, route or record does not exist, or the caller may not see it. */
export function notFound(message: string, code: string = 'not_found', param: string | null = null): ApiError {
  return new ApiError(404, message, { type: 'not_found_error', code, param });
}

/** 413: the request body is larger than `limitBytes`. */
export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(
    413,
    `request body is larger than the limit of ${limitBytes} bytes; send a shorter prompt or fewer messages`,
    {
      type: 'invalid_request_error',
      code: 'payload_too_large',
    },
  );
}

/** 429: a rate limit or a full queue; `retryAfterSeconds` goes out as `Retry-After`. */
export function rateLimited(message: string, retryAfterSeconds: number, code: string = 'rate_limit_exceeded'): ApiError {
  return new ApiError(429, message, { type: 'rate_limit_error', code, retryAfterSeconds });
}

/** 500: a bug or an unexpected state; the message must not leak internals. */
export function serverError(
  message: string = 'internal error; retry the request, and report it if it persists',
  code: string = 'internal_error',
): ApiError {
  return new ApiError(500, message, { type: 'server_error', code });
}

/** 502: a backend answered something unusable (garbage, a broken stream) or failed. */
export function badGateway(message: string, code: string = 'bad_gateway'): ApiError {
  return new ApiError(502, message, { type: 'backend_error', code });
}

/** 503: no backend can take the request now (all down, or still loading). */
export function serviceUnavailable(message: string, retryAfterSeconds?: number, code: string = 'backend_unavailable'): ApiError {
  return new ApiError(503, message, { type: 'backend_error', code, retryAfterSeconds });
}

/** 504: the backend did not answer within the configured time. */
export function gatewayTimeout(message: string, code: string = 'backend_timeout'): ApiError {
  return new ApiError(504, message, { type: 'backend_error', code });
}

/**
 * Rebuilds an {@link ApiError} from a status and a body received from another service (the backend).
 * A body that is not an {@link ErrorBody} becomes a 502 that says so.
 */
export function apiErrorFromResponse(status: number, body: unknown): ApiError {
  if (!isErrorBody(body)) return badGateway(`backend answered status ${status} without an error body`, 'bad_backend_response');
  const e = body.error;
  const type = (KNOWN_TYPES as readonly string[]).includes(e.type)
    ? (e.type as ErrorType)
    : status >= 500
      ? 'server_error'
      : 'invalid_request_error';
  return new ApiError(status, e.message, { type, code: e.code ?? null, param: e.param ?? null });
}

const KNOWN_TYPES = [
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'rate_limit_error',
  'server_error',
  'backend_error',
] as const;

/** Any thrown value as an {@link ApiError}: ApiErrors pass through, anything else is a generic 500 (never its message). */
export function toApiError(value: unknown): ApiError {
  return value instanceof ApiError ? value : serverError();
}
