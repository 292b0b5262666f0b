/**
 * Sends a resolved request to a backend: signed, with a deadline for the response headers, and retried on
 * another backend only while nothing has reached the client — on a refused connection or a 5xx that says the
 * backend (or the requested model there) cannot take work now (shared/src/failure-scope.ts). Once a backend answered
 * below 500, that answer is the one the client gets (a stream that breaks later is not retried). A 500 that says
 * this request failed on a healthy backend is the client's answer too: the backend stays in rotation and the request
 * is not run again elsewhere. A 503 that says only the requested model cannot serve there (loading, failed to load,
 * its engine gone) takes that model there out of rotation, not the backend: its other models' requests still go.
 */
import {
  ApiError,
  apiErrorFromResponse,
  badGateway,
  gatewayTimeout,
  isErrorBody,
  serviceUnavailable,
} from '../../../shared/src/errors.ts';
import { answerFailureScope } from '../../../shared/src/failure-scope.ts';
import { signRequest } from '../../../shared/src/signing.ts';
import type { BackendConfig, EdgeConfig } from '../config.ts';
import { HEADERS } from '../../../shared/src/headers.ts';
import type { HealthBook } from './health-book.ts';
import { planAttempts } from './plan-attempts.ts';

/** A backend's answer (status < 500) and how many backends were tried to get it. */
export interface Forwarded {
  response: Response;
  backend: BackendConfig;
  attempts: number;
}

/** What one attempt ended with when it did not produce an answer to pass on. */
type Failure =
  | { kind: 'connect'; reason: string }
  | { kind: 'status'; status: number; body: unknown }
  | { kind: 'timeout' }
  | { kind: 'aborted' };

/** Options of {@link forward}. */
export interface ForwardOptions {
  /** Sent as `x-realign-dispatch-id`: the id the backends keep this request's usage under. */
  dispatchId?: string;
  /** The client's request signal: when the client goes away, the backend request is aborted (its body too). */
  signal?: AbortSignal;
  /** Every backend a request is sent to is appended here (whether it answered or not). */
  tried?: BackendConfig[];
  /** More headers of the request (the contract's, shared/src/backend-request.ts). */
  headers?: Record<string, string>;
  /** The model the body asks for (its `model`): a model's failure on a backend is recorded for it only. */
  model?: string;
}

/** The status of a request whose client went away before its answer (nginx's "client closed request"). */
export const CLIENT_CLOSED = 499;

async function readErrorBody(res: Response): Promise<unknown> {
  const text = await res.text().catch(() => '');
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 200);
  }
}

/**
 * The client's error for a request that failed on a healthy backend (its 500): the backend's own message and code
 * (written for clients), with the status and type it sent.
 */
function requestFailed(status: number, body: unknown): ApiError {
  const e = apiErrorFromResponse(status, body);
  return new ApiError(e.status, e.message.slice(0, 500), { type: e.type, code: e.code ?? 'backend_error', param: e.param });
}

async function attempt(
  backend: BackendConfig,
  path: string,
  body: string,
  requestId: string,
  config: EdgeConfig,
  timeoutMs: number,
  opts: ForwardOptions,
): Promise<Response | Failure> {
  const url = new URL(`${backend.url}${path}`);
  const signature = await signRequest(config.hmacSecret, { method: 'POST', path: url.pathname + url.search, body });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  // kept after the headers arrived: a client that leaves while the body is read still aborts the backend request
  const clientGone = () => controller.abort();
  if (opts.signal?.aborted) return { kind: 'aborted' };
  opts.signal?.addEventListener('abort', clientGone, { once: true });
  const dispatch: Record<string, string> = opts.dispatchId ? { [HEADERS.dispatchId]: opts.dispatchId } : {};
  try {
    return await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        [HEADERS.requestId]: requestId,
        ...opts.headers,
        ...dispatch,
        ...signature,
      },
      body,
      signal: controller.signal,
    });
  } catch (e) {
    if (opts.signal?.aborted) return { kind: 'aborted' };
    if (controller.signal.aborted) return { kind: 'timeout' };
    return { kind: 'connect', reason: e instanceof Error ? e.message : String(e) };
  } finally {
    clearTimeout(timer);
  }
}

function finalError(last: Failure | null, tried: number, timeoutMs: number): ApiError {
  if (last?.kind === 'timeout') return gatewayTimeout(`the backend did not answer within ${timeoutMs} ms; retry later`);
  if (last?.kind === 'status') {
    if (last.status === 503) {
      const e = apiErrorFromResponse(503, last.body);
      return e.status === 503 ? serviceUnavailable(e.message, e.retryAfterSeconds ?? 1, e.code ?? 'backend_unavailable') : e;
    }
    // the backend's own explanation (its error messages are written for clients) tells e.g. broken weights from a crash
    const why = isErrorBody(last.body) ? `: ${last.body.error.message.slice(0, 500)}` : '; retry later';
    return badGateway(`the backend failed (status ${last.status}) on ${tried} attempt(s)${why}`, 'backend_error');
  }
  return serviceUnavailable(`no backend could be reached (${tried} attempt(s)); retry later`, 1);
}

/**
 * Forwards `body` (JSON text) to `path` on the best backend, retrying before the first byte. `timeoutMs` bounds
 * the wait for the response headers. Throws an {@link ApiError}: the backend's 500 when the request failed there
 * (not retried), else 502/503/504 when no backend produced an answer.
 */
export async function forward(
  path: string,
  body: string,
  requestId: string,
  config: EdgeConfig,
  book: HealthBook,
  timeoutMs: number,
  opts: ForwardOptions = {},
): Promise<Forwarded> {
  const model = opts.model;
  const order = await planAttempts(config, book, model);
  let last: Failure | null = null;
  let tried = 0;
  for (const backend of order.slice(0, config.maxAttempts)) {
    tried++;
    opts.tried?.push(backend);
    const r = await attempt(backend, path, body, requestId, config, timeoutMs, opts);
    if (r instanceof Response) {
      if (r.status < 500) {
        book.markSuccess(backend.url, model);
        return { response: r, backend, attempts: tried };
      }
      const body = await readErrorBody(r);
      const scope = answerFailureScope(r.status, body);
      if (scope === 'request') {
        // this request's failure, not the backend's: no cooldown for everyone, no second run of it elsewhere
        book.markSuccess(backend.url, model);
        throw requestFailed(r.status, body);
      }
      last = { kind: 'status', status: r.status, body };
      // the model's failure there cools down that model there only: the backend's other models keep it
      const code = isErrorBody(body) && body.error.code ? ` ${body.error.code.slice(0, 64)}` : '';
      book.markFailure(
        backend.url,
        `status ${r.status}${code}`,
        Date.now(),
        config.healthCooldownMs,
        scope === 'model' ? model : undefined,
      );
      continue;
    }
    if (r.kind === 'aborted')
      throw new ApiError(CLIENT_CLOSED, 'the client closed the request before its answer', {
        type: 'invalid_request_error',
        code: 'client_closed_request',
      });
    last = r;
    book.markFailure(backend.url, r.kind === 'connect' ? `connect: ${r.reason}` : 'timeout', Date.now(), config.healthCooldownMs);
    // A stalled backend may still be generating: retrying elsewhere would double the GPU work and the wait.
    if (r.kind === 'timeout') break;
  }
  throw finalError(last, tried, timeoutMs);
}
