/**
 * The second half of a generation request: answer from the cache when allowed and present, else forward to a
 * backend and pass its answer through — JSON read whole (it is small and must be checked), SSE relayed event by
 * event. Usage and cache writes go to `waitUntil` so they never delay the client.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ApiError, apiErrorFromResponse, badGateway, isErrorBody } from '../../../shared/src/errors.ts';
import { streamErrorScope } from '../../../shared/src/failure-scope.ts';
import { backendRequestHeaders, type BackendBody } from '../../../shared/src/backend-request.ts';
import { HEADERS } from '../../../shared/src/headers.ts';
import { ENDPOINTS, type RequestKind } from '../../../shared/src/parse-request.ts';
import { readUsage, type ChatCompletion, type TextCompletion, type Usage } from '../../../shared/src/responses.ts';
import { SSE_CONTENT_TYPE } from '../../../shared/src/sse.ts';
import type { AppEnv } from '../app-env.ts';
import { cacheKey } from '../cache/cache-key.ts';
import { decideCaching } from '../cache/cache-policy.ts';
import { getCached, putCached, type CachedResponse } from '../cache/response-cache.ts';
import { replayAsSse } from '../cache/sse-replay.ts';
import { StreamAssembler } from '../cache/stream-assembler.ts';
import { modelNotFound } from '../db/request-context.ts';
import { errorResponse } from '../http/error-response.ts';
import type { BackendConfig } from '../config.ts';
import { CLIENT_CLOSED, forward, type Forwarded } from '../routing/forward.ts';
import { healthBook } from '../routing/health-book.ts';
import { readAllText } from '../stream/read-with-timeout.ts';
import { relaySse } from '../stream/sse-relay.ts';
import { DispatchUsage } from '../usage/dispatch-usage.ts';
import { recordUsage } from '../usage/usage-recorder.ts';
import { admitted, type Prepared } from './prepare.ts';

const SSE_HEADERS = { 'content-type': SSE_CONTENT_TYPE, 'cache-control': 'no-cache' };

/** Parses the room the backend names in its `context_length_exceeded` refusal of `max_tokens` ("lower max_tokens to N"). */
const CONTEXT_LEFT = /lower max_tokens to (\d+)/;

/** The backend body as sent: a retry may change its `max_tokens`. */
type ForwardedBody = BackendBody<RequestKind> & { max_tokens?: number };

function withoutMaxTokens(body: ForwardedBody): ForwardedBody {
  const { max_tokens: _drop, ...rest } = body;
  return rest;
}

/**
 * For an answer refusing a preset's `max_tokens` as too long for the context: the `max_tokens` to ask again with
 * (the room the backend names), or `unset` (the backend then caps its own default to the context) when it names
 * none; null for any other answer, which is left unread. Issue 15 item 8: only a client's own value is an error.
 */
async function contextCap(res: Response): Promise<number | 'unset' | null> {
  if (res.status !== 400 || !(res.headers.get('content-type') ?? '').includes('json')) return null;
  const text = await res
    .clone()
    .text()
    .catch(() => '');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isErrorBody(json) || json.error.code !== 'context_length_exceeded' || json.error.param !== 'max_tokens') return null;
  await res.body?.cancel().catch(() => undefined);
  const room = CONTEXT_LEFT.exec(json.error.message);
  const n = room ? Number(room[1]) : NaN;
  return Number.isSafeInteger(n) && n >= 1 ? n : 'unset';
}

function isCompletion(value: unknown): value is ChatCompletion | TextCompletion {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { object?: unknown; choices?: unknown };
  return (v.object === 'chat.completion' || v.object === 'text_completion') && Array.isArray(v.choices);
}

function cachedAnswer(c: Context<AppEnv>, p: Prepared, entry: CachedResponse): Response {
  c.header(HEADERS.cache, 'HIT');
  c.executionCtx.waitUntil(recordUsage(c.env, p.usage, 200, readUsage(entry.body), true));
  if (p.stream) return c.body(replayAsSse(entry.body, p.includeUsage), 200, SSE_HEADERS);
  return c.json(entry.body, 200);
}

/** One request being answered by a backend: what its pieces share. */
interface Answering {
  c: Context<AppEnv>;
  p: Prepared;
  dispatch: DispatchUsage;
  /** Records usage for an answer not served from the cache, and settles its token charge (callers hand it to `waitUntil`). */
  record: (status: number, usage?: Usage | null) => Promise<void>;
  /** Whether the answer goes into the cache (a complete stream is assembled for it). */
  cacheable: boolean;
  /** Stores a complete answer in the cache (when the request may be cached). */
  store: (completion: ChatCompletion | TextCompletion) => Promise<void>;
}

/**
 * Forwards the request to a backend. A max_tokens the client did not send (a preset's) is capped to the context
 * left, not an error: asked again once.
 */
async function forwardCapped(a: Answering): Promise<Forwarded> {
  const { c, p, dispatch } = a;
  const options = {
    dispatchId: dispatch.dispatchId,
    signal: c.req.raw.signal,
    tried: dispatch.tried,
    headers: backendRequestHeaders(p.backend),
    model: p.backend.body.model,
  };
  const timeoutMs = p.stream ? p.config.backendTimeoutMs : p.config.backendResponseTimeoutMs;
  // The backend always reports usage on streams; the relay drops that chunk if the client did not ask for it.
  let body: ForwardedBody = p.stream ? { ...p.backend.body, stream_options: { include_usage: true } } : p.backend.body;
  for (let round = 0; ; round++) {
    let forwarded: Forwarded;
    try {
      forwarded = await forward(
        ENDPOINTS[p.kind],
        JSON.stringify(body),
        p.usage.requestId,
        p.config,
        healthBook,
        timeoutMs,
        options,
      );
    } catch (e) {
      c.executionCtx.waitUntil(a.record(e instanceof ApiError ? e.status : 500));
      throw e;
    }
    const capped =
      round === 0 && !p.clientMaxTokens && body.max_tokens !== undefined ? await contextCap(forwarded.response) : null;
    if (capped === null) return forwarded;
    body = capped === 'unset' ? withoutMaxTokens(body) : { ...body, max_tokens: capped };
  }
}

/** Takes the backend out of rotation, or with `model` only that model there. */
function markDown(p: Prepared, backend: BackendConfig, reason: string, model?: string): void {
  healthBook.markFailure(backend.url, reason, Date.now(), p.config.healthCooldownMs, model);
}

/** Relays the backend's event stream to the client; usage and the cache entry are written once it ends. */
function relayStream(a: Answering, upstream: Response & { body: ReadableStream<Uint8Array> }, backend: BackendConfig): Response {
  const { c, p, dispatch } = a;
  const assembler = a.cacheable ? new StreamAssembler() : null;
  let usage: Usage | null = null;
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  let status = 200;
  let complete = false;
  c.executionCtx.waitUntil(
    ended.then(async () => {
      const completion = complete ? assembler?.result() : null;
      await Promise.all([a.record(status, usage), completion ? a.store(completion) : Promise.resolve()]);
    }),
  );
  const stream = relaySse(upstream.body, {
    idleTimeoutMs: p.config.streamIdleTimeoutMs,
    keepUsageChunk: p.includeUsage,
    onEvent: (event) => {
      dispatch.relay(event);
      const reported = readUsage(event);
      usage = reported ?? usage;
      assembler?.add(event, reported);
    },
    onEnd: (outcome) => {
      complete = outcome.kind === 'done';
      if (outcome.kind === 'broken') {
        status = 502;
        markDown(p, backend, `stream: ${outcome.reason}`);
      } else if (outcome.kind === 'backend_error') {
        status = 500;
        // an error event of the backend's own state (shutting down) takes it out of rotation, one of the model's
        // (its engine gone) takes that model there out; one of this request's failure (its row, its logits) leaves
        // it for everybody else
        const scope = streamErrorScope(outcome.body);
        const reason = `stream: ${outcome.body.error.code ?? 'error'}`;
        if (scope !== 'request') markDown(p, backend, reason, scope === 'model' ? p.backend.body.model : undefined);
      } else if (outcome.kind === 'cancelled') status = 499;
      finish();
    },
  });
  return c.body(stream, 200, SSE_HEADERS);
}

/** The backend's whole answer as text, or the error response when it could not be read. */
async function readAnswer(a: Answering, upstream: Response, backend: BackendConfig): Promise<string | Response> {
  const { c, p } = a;
  try {
    return await readAllText(upstream.body, p.config.streamIdleTimeoutMs);
  } catch {
    if (c.req.raw.signal.aborted) {
      // the client left while the answer was read: the backend request was aborted with it (routing/forward.ts)
      c.executionCtx.waitUntil(a.record(CLIENT_CLOSED));
      return errorResponse(
        c,
        new ApiError(CLIENT_CLOSED, 'the client closed the request before its answer', {
          type: 'invalid_request_error',
          code: 'client_closed_request',
        }),
      );
    }
    markDown(p, backend, 'body read failed');
    c.executionCtx.waitUntil(a.record(502));
    return errorResponse(c, badGateway('the backend stopped sending its answer; retry the request', 'backend_error'));
  }
}

/** A backend's refusal passed on (its 404 for a model it does not serve becomes the edge's own). */
function refusal(a: Answering, upstream: Response, json: unknown): Response {
  const { c, p } = a;
  // The edge granted a model this backend does not serve: answer the edge's own 404 naming only that model —
  // the backend's message lists the models it serves, which are not this tenant's to see.
  const error =
    upstream.status === 404 && isErrorBody(json) && json.error.code === 'model_not_found'
      ? modelNotFound(p.usage.model)
      : apiErrorFromResponse(upstream.status, json);
  const retryAfter = upstream.headers.get(HEADERS.retryAfter);
  if (retryAfter !== null && /^\d{1,6}$/.test(retryAfter)) c.header(HEADERS.retryAfter, retryAfter);
  c.executionCtx.waitUntil(a.record(error.status));
  return errorResponse(c, error);
}

/** Passes a JSON answer on after checking it is the kind asked for (replayed as SSE if a stream was asked for). */
async function answerJson(a: Answering, upstream: Response, backend: BackendConfig): Promise<Response> {
  const { c, p } = a;
  const text = await readAnswer(a, upstream, backend);
  if (text instanceof Response) return text;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (upstream.status !== 200) return refusal(a, upstream, json);
  const expectedLogits =
    p.kind === 'logits' && typeof json === 'object' && json !== null && (json as { object?: unknown }).object === 'logits';
  if (isErrorBody(json) || !(expectedLogits || (p.kind !== 'logits' && isCompletion(json)))) {
    markDown(p, backend, 'invalid answer');
    c.executionCtx.waitUntil(a.record(502));
    return errorResponse(
      c,
      badGateway(`the backend sent an answer that is not a ${p.kind} response; retry the request`, 'bad_backend_response'),
    );
  }
  const usage = readUsage(json);
  c.executionCtx.waitUntil(Promise.all([a.record(200, usage), isCompletion(json) && usage ? a.store(json) : Promise.resolve()]));
  if (p.stream) {
    // The client asked for a stream but the backend answered JSON: replay it as SSE rather than change the protocol.
    return isCompletion(json) ? c.body(replayAsSse(json, p.includeUsage), 200, SSE_HEADERS) : c.json(json as object, 200);
  }
  return c.body(text, upstream.status as ContentfulStatusCode, { 'content-type': 'application/json' });
}

/** The request's cache key and its stored answer (null when there is none). */
async function lookUp(env: Env, p: Prepared): Promise<{ key: string; entry: CachedResponse | null }> {
  const key = await cacheKey(p.usage.auth.tenantGeneration, p.kind, p.backend.body);
  return { key, entry: await getCached(env.CACHE, key) };
}

/**
 * Answers a prepared request (cache, then backend). The cache lookup runs while the rate limiter decides (the call
 * prepare started): a HIT waits for the longer of the two, and nothing is answered before the admission.
 */
export async function respond(c: Context<AppEnv>, p: Prepared): Promise<Response> {
  const decision = decideCaching(p.kind, p, c.req.header('cache-control'), p.usage.auth.cacheTtlSeconds);
  const [found] = await Promise.all([decision.mode === 'lookup' ? lookUp(c.env, p) : null, admitted(c, p)]);
  const key = found?.key ?? null;
  if (found?.entry) return cachedAnswer(c, p, found.entry);
  c.header(HEADERS.cache, key === null ? 'BYPASS' : 'MISS');
  // the usage row exists from here on (in flight), and is completed with the backends' counts however this ends
  const dispatch = new DispatchUsage(c.env, p.usage, p.config);
  const store = (completion: ChatCompletion | TextCompletion) =>
    key === null
      ? Promise.resolve()
      : putCached(
          c.env.CACHE,
          key,
          { kind: p.kind as 'chat' | 'completions', body: completion, storedAt: Date.now() },
          p.usage.auth.cacheTtlSeconds,
        );
  const record = (status: number, usage: Usage | null = null) => dispatch.end(status, usage);
  const a: Answering = { c, p, dispatch, record, cacheable: key !== null, store };
  const { response: upstream, backend, attempts } = await forwardCapped(a);
  c.header(HEADERS.attempts, String(attempts));
  const isSse = (upstream.headers.get('content-type') ?? '').includes('text/event-stream');
  if (upstream.status === 200 && p.stream && isSse && upstream.body !== null)
    return relayStream(a, upstream as Response & { body: ReadableStream<Uint8Array> }, backend);
  return answerJson(a, upstream, backend);
}
