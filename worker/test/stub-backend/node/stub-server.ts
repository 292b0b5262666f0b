/**
 * A STUB of the GPU backend for the worker's tests — not the real one. The worker's tests must show routing,
 * failover, streaming and caching behaviours that need a backend to misbehave on cue (refuse, 500, stall, die
 * mid-stream, hold a stream until released), which a real model server cannot be made to do deterministically.
 * The real backend (gpu-backend/) is exercised through the worker in the end-to-end tests.
 *
 * It is a real HTTP server on 127.0.0.1 (started by global-setup.ts in Node), so the worker talks to it over a
 * real socket from inside workerd. A backend base URL is `${url}/<behaviour>/<tag>`: the behaviour picks how it
 * answers, the tag keeps each test's counters apart. Every request must carry a valid edge signature (checked
 * with the shared verifier, nonces accepted once), otherwise 401 — so the tests also prove the worker signs.
 *
 * Control routes (unsigned, for tests): GET /__stats/<tag> → {requests: [{behaviour, path, body}], aborted, ledger},
 * POST /__release/<tag> → lets a `gated` stream continue.
 *
 * Like the real backend it keeps a usage ledger per dispatch id (`x-realign-dispatch-id`), readable signed at
 * `<base>/ledger/<dispatchId>`: what it generated for each request however it ended (completed, cancelled when the
 * worker closed a stream early, failed for `fail500` and `die`), the "backend's count" usage rows are checked against.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../../../shared/src/signing.ts';
import { SSE_DONE, sseEvent } from '../../../../shared/src/sse.ts';

/**
 * Behaviours a stub backend URL can select. Three answer like the real backend's validation does after its
 * work: `nomodel` (404 model_not_found listing other models it serves), `reject400` (400 context_length_exceeded
 * on the prompt, as after tokenizing), `ctx256` (a 256-token context: the prompt counts ⌈characters / 4⌉ tokens,
 * and a `max_tokens` that does not fit is refused with the real backend's message).
 * The 5xx ones follow the real backend's rule of whose failure it is (shared/src/failure-scope.ts): `fail500` is
 * a 500 server_error (this request failed, e.g. its row), `fail503` a 503 engine_unavailable after reading the
 * prompt (the engine died under it), `unavailable` a 503 before any work (a model loading), `fail502` a 502 with an
 * HTML body (a proxy in front of a dead backend); in a stream, `row-error` ends with a server_error event (this
 * request's row failed) and `engine-gone` with a backend_error event (the engine died). `models` is one backend
 * serving several models, some of which cannot serve: a model whose id starts with `down-` failed to load (503
 * model_unavailable), one starting with `loading-` is still loading (503 model_loading), any other serves; its
 * `/readyz` names the state of each model it was asked for, as the real backend's does (200 once none is loading
 * and one serves).
 */
export type StubBehaviour =
  | 'ok'
  | 'fail500'
  | 'fail502'
  | 'fail503'
  | 'unavailable'
  | 'gated'
  | 'die'
  | 'row-error'
  | 'engine-gone'
  | 'models'
  | 'stall'
  | 'garbage'
  | 'slow'
  | 'nomodel'
  | 'reject400'
  | 'ctx256';

/** The context of the `ctx256` behaviour. */
export const STUB_CONTEXT = 256;

function stubPromptTokens(body: Record<string, unknown>): number {
  const messages = body.messages as { content?: unknown }[] | undefined;
  const text = messages ? messages.map((m) => String(m.content ?? '')).join(' ') : String(body.prompt ?? '');
  return Math.max(1, Math.ceil(text.length / 4));
}

interface Recorded {
  behaviour: string;
  method: string;
  path: string;
  body: unknown;
}

/** One entry of the stub's usage ledger (the shape of gpu-backend/src/server/usage-ledger.ts answers). */
interface LedgerEntry {
  state: 'running' | 'completed' | 'cancelled' | 'failed';
  usage: ReturnType<typeof usageFor>;
}

interface TagState {
  requests: Recorded[];
  ledger: Record<string, LedgerEntry>;
  /** Responses whose connection the worker closed before the stub finished them. */
  aborted: number;
  release: Promise<void>;
  releaseNow: () => void;
  serial: number;
  /** The models requests asked this backend for (the `models` behaviour's `/readyz` names their states). */
  models: Set<string>;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function newTag(): TagState {
  let releaseNow!: () => void;
  const release = new Promise<void>((r) => (releaseNow = r));
  return { requests: [], ledger: {}, aborted: 0, release, releaseNow, serial: 0, models: new Set() };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function usageFor(lambda: number, prompt = 5, completion = 3, mix?: Record<string, number>) {
  const tokens = { prompt_tokens: prompt, completion_tokens: completion };
  const none = { prompt_tokens: 0, completion_tokens: 0 };
  const base = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (mix === undefined)
    return {
      ...base,
      realign: { lambda, branches: { aligned: lambda === 0 ? none : tokens, reference: lambda === 1 ? none : tokens } },
    };
  // like the backend's usage ledger: each adapter with λ ≠ 0 runs a branch; the reference runs unless one adapter at 1
  const used = Object.entries(mix).filter(([, l]) => l !== 0);
  const reference = used.length === 1 && used[0]![1] === 1 ? none : tokens;
  const adapters = Object.fromEntries(used.map(([name]) => [name, { ...tokens }]));
  return { ...base, realign: { lambda, branches: { aligned: used.length ? tokens : none, reference }, mix, adapters } };
}

/**
 * The blend a request asks for, as a backend serving a model of several adapters reads it: `mix`, or `adapter`
 * with `lambda` (a mix of one); λ is the mix's sum. Without either, `lambda` (default 1) and no mix.
 */
function blendOf(body: Record<string, unknown>): { lambda: number; mix?: Record<string, number> } {
  const lambda = typeof body.lambda === 'number' ? body.lambda : 1;
  const mix =
    typeof body.mix === 'object' && body.mix !== null
      ? (body.mix as Record<string, number>)
      : typeof body.adapter === 'string'
        ? { [body.adapter]: lambda }
        : undefined;
  return mix === undefined ? { lambda } : { lambda: Object.values(mix).reduce((a, b) => a + b, 0), mix };
}

/** The words a stub completion consists of; the serial makes two uncached answers differ. */
function words(body: Record<string, unknown>, serial: number): string[] {
  return [
    'answer',
    ` #${serial}`,
    ` λ=${String(body.lambda)}`,
    ` temp=${String(body.temperature ?? 'unset')}`,
    ` max=${String(body.max_tokens ?? 'unset')}`,
  ];
}

function completionObject(kind: 'chat' | 'completions', body: Record<string, unknown>, serial: number) {
  const { lambda, mix } = blendOf(body);
  const text = words(body, serial).join('');
  const usage = usageFor(lambda, 5, 3, mix);
  const base = { id: `cmpl-stub-${serial}`, created: 1_800_000_000, model: String(body.model), lambda, usage };
  return kind === 'chat'
    ? {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }],
      }
    : { ...base, object: 'text_completion', choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }] };
}

function chunkEvents(kind: 'chat' | 'completions', body: Record<string, unknown>, serial: number): string[] {
  const { lambda, mix } = blendOf(body);
  const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const extra = includeUsage ? { usage: null } : {};
  const base = { id: `cmpl-stub-${serial}`, created: 1_800_000_000, model: String(body.model), lambda, ...extra };
  const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const piece = (text: string, first: boolean) =>
    kind === 'chat'
      ? {
          ...base,
          object,
          choices: [
            {
              index: 0,
              delta: first ? { role: 'assistant', content: text } : { content: text },
              logprobs: null,
              finish_reason: null,
            },
          ],
        }
      : { ...base, object, choices: [{ index: 0, text, logprobs: null, finish_reason: null }] };
  const events = words(body, serial).map((w, i) => sseEvent(piece(w, i === 0)));
  const last =
    kind === 'chat'
      ? { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }
      : { index: 0, text: '', logprobs: null, finish_reason: 'stop' };
  events.push(sseEvent({ ...base, object, choices: [last] }));
  if (includeUsage) events.push(sseEvent({ ...base, object, choices: [], usage: usageFor(lambda, 5, 3, mix) }));
  events.push(SSE_DONE);
  return events;
}

function logitsObject(body: Record<string, unknown>, serial: number) {
  const lambdas = body.lambdas as number[];
  return {
    id: `logits-stub-${serial}`,
    object: 'logits',
    created: 1_800_000_000,
    model: String(body.model),
    lambdas,
    input_ids: [1, 2, 3],
    positions: 'last',
    results: lambdas.map((lambda) => ({
      lambda,
      positions: [{ position: 2, top_logprobs: [{ token_id: 7, token: 'x', logprob: -0.1 * (1 + lambda) }] }],
    })),
    usage: {
      prompt_tokens: 3,
      completion_tokens: 0,
      total_tokens: 3,
      realign: {
        lambda: lambdas,
        branches: { aligned: { prompt_tokens: 3, completion_tokens: 0 }, reference: { prompt_tokens: 3, completion_tokens: 0 } },
      },
    },
  };
}

/** A running stub backend. */
export interface StubBackend {
  url: string;
  close(): Promise<void>;
}

/** Starts the stub on a free loopback port; requests must be signed with `hmacSecret`. */
export async function startStubBackend(hmacSecret: string): Promise<StubBackend> {
  const tags = new Map<string, TagState>();
  const seenNonces = new Set<string>();
  const tag = (name: string) => {
    let t = tags.get(name);
    if (t === undefined) tags.set(name, (t = newTag()));
    return t;
  };
  const open = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stub');
    const [first, second, ...rest] = url.pathname.split('/').filter(Boolean);
    if (first === '__stats' && second)
      return json(res, 200, { requests: tag(second).requests, aborted: tag(second).aborted, ledger: tag(second).ledger });
    if (first === '__release' && second) {
      tag(second).releaseNow();
      return json(res, 200, { released: true });
    }
    if (!first || !second)
      return json(res, 404, {
        error: { message: 'stub: use /<behaviour>/<tag>/...', type: 'not_found_error', param: null, code: null },
      });
    const behaviour = first as StubBehaviour;
    const state = tag(second);
    const text = await readBody(req);
    const verdict = await verifySignature(hmacSecret, req.headers, {
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      body: text,
    });
    if (!verdict.ok || seenNonces.has(verdict.nonce)) {
      return json(res, 401, {
        error: {
          message: `stub: ${verdict.ok ? 'replayed nonce' : verdict.reason}`,
          type: 'authentication_error',
          param: null,
          code: 'bad_signature',
        },
      });
    }
    seenNonces.add(verdict.nonce);
    const path = '/' + rest.join('/');
    let body: Record<string, unknown> = {};
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      body = {};
    }
    if (path.startsWith('/ledger/')) {
      const entry = state.ledger[decodeURIComponent(path.slice('/ledger/'.length))];
      return entry
        ? json(res, 200, entry)
        : json(res, 404, { error: { message: 'stub: unknown dispatch id', type: 'not_found_error', param: null, code: null } });
    }
    state.requests.push({ behaviour, method: req.method ?? 'GET', path, body });
    const serial = ++state.serial;
    const dispatchId = req.headers['x-realign-dispatch-id'];
    /** Sets the ledger entry of this request (requests without a dispatch id have none). */
    const ledger = (state_: LedgerEntry['state'], completion: number) => {
      const { lambda, mix } = blendOf(body);
      if (typeof dispatchId === 'string')
        state.ledger[dispatchId] = { state: state_, usage: usageFor(lambda, 5, completion, mix) };
    };

    if (behaviour === 'fail500') {
      ledger('failed', 0);
      return json(res, 500, {
        error: { message: 'stub: internal failure', type: 'server_error', param: null, code: 'internal_error' },
      });
    }
    if (behaviour === 'fail503') {
      ledger('failed', 0);
      return json(
        res,
        503,
        { error: { message: 'stub: the engine is unavailable', type: 'backend_error', param: null, code: 'engine_unavailable' } },
        { 'retry-after': '5' },
      );
    }
    if (behaviour === 'fail502') {
      res.writeHead(502, { 'content-type': 'text/html' });
      return void res.end('<html><body>502 Bad Gateway</body></html>');
    }
    if (behaviour === 'unavailable')
      return json(
        res,
        503,
        { error: { message: 'stub: model still loading', type: 'backend_error', param: null, code: 'loading' } },
        { 'retry-after': '7' },
      );
    if (behaviour === 'models') {
      const stateOf = (m: string) =>
        m.startsWith('down-') ? 'failed: stub: no weights' : m.startsWith('loading-') ? 'loading' : 'ready';
      if (path === '/readyz') {
        const models = Object.fromEntries([...state.models].map((m) => [m, stateOf(m)]));
        const states = Object.values(models);
        const ready = !states.includes('loading') && states.includes('ready');
        return json(res, ready ? 200 : 503, { ready, accepting: true, models });
      }
      const model = String(body.model);
      state.models.add(model);
      if (stateOf(model) === 'loading')
        return json(
          res,
          503,
          {
            error: {
              message: `stub: model "${model}" is still loading`,
              type: 'backend_error',
              param: null,
              code: 'model_loading',
            },
          },
          { 'retry-after': '5' },
        );
      if (stateOf(model) !== 'ready')
        return json(res, 503, {
          error: {
            message: `stub: model "${model}" failed to load`,
            type: 'backend_error',
            param: null,
            code: 'model_unavailable',
          },
        });
    }
    if (path === '/readyz') return json(res, 200, { ready: true });
    if (behaviour === 'stall') return; // never answers; closed when the server closes
    if (behaviour === 'nomodel') {
      const message = `model "${String(body.model)}" is not served here; this backend serves: private-model-a, private-model-b`;
      return json(res, 404, { error: { message, type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
    }
    if (behaviour === 'reject400') {
      return json(res, 400, {
        error: {
          message: '`prompt` has 9999 tokens; this server accepts at most 4096',
          type: 'invalid_request_error',
          param: 'prompt',
          code: 'context_length_exceeded',
        },
      });
    }
    if (behaviour === 'ctx256' && typeof body.max_tokens === 'number') {
      const longest = stubPromptTokens(body);
      if (longest + body.max_tokens > STUB_CONTEXT) {
        const message = `\`max_tokens\` is ${body.max_tokens} but the prompt already has ${longest} of the model's ${STUB_CONTEXT} tokens of context; lower max_tokens to ${STUB_CONTEXT - longest}`;
        return json(res, 400, {
          error: { message, type: 'invalid_request_error', param: 'max_tokens', code: 'context_length_exceeded' },
        });
      }
    }
    if (behaviour === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('<html>not json</html>');
    }
    const kind =
      path === '/v1/chat/completions'
        ? 'chat'
        : path === '/v1/completions'
          ? 'completions'
          : path === '/v1/logits'
            ? 'logits'
            : null;
    if (kind === null)
      return json(res, 404, { error: { message: `stub: no route ${path}`, type: 'not_found_error', param: null, code: null } });
    if (kind === 'logits') return json(res, 200, logitsObject(body, serial));
    if (body.stream !== true) {
      ledger('completed', 3);
      return json(res, 200, completionObject(kind, body, serial));
    }

    const events = chunkEvents(kind, body, serial);
    // one generated token per text event (the words); the usage of a whole answer counts 3 (usageFor)
    let sent = 0;
    ledger('running', 0);
    res.on('close', () => {
      if (!res.writableFinished) {
        state.aborted++;
        if (behaviour !== 'die') ledger('cancelled', Math.min(sent, 3));
      }
    });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    if (behaviour === 'row-error' || behaviour === 'engine-gone') {
      // two words, then the backend's own error event (what gpu-backend/src/server/generation/stream.ts sends)
      res.write(events[0]);
      res.write(events[1]);
      ledger('failed', 2);
      const error =
        behaviour === 'row-error'
          ? { message: 'stub: this request failed inside the engine', type: 'server_error', param: null, code: 'sequence_failed' }
          : { message: 'stub: the engine is unavailable', type: 'backend_error', param: null, code: 'engine_unavailable' };
      res.write(sseEvent({ error }));
      return void res.end();
    }
    if (behaviour === 'die') {
      res.write(events[0]);
      res.write(events[1]);
      ledger('failed', 2);
      await wait(50);
      return void res.socket?.destroy();
    }
    for (const [i, event] of events.entries()) {
      if (res.destroyed) return;
      res.write(event);
      sent++;
      if (behaviour === 'gated' && i === 0) await state.release;
      if (behaviour === 'slow') await wait(30);
    }
    ledger('completed', 3);
    res.end();
  }

  const server: Server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent)
        json(res, 500, { error: { message: `stub crashed: ${String(e)}`, type: 'server_error', param: null, code: null } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const t of tags.values()) t.releaseNow();
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback URL where nothing listens (a port that was bound and released), so connections are refused. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
