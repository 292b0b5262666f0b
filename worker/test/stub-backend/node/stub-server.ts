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
import { sseEvent } from '../../../../shared/src/sse.ts';
import {
  blendOf,
  chunkEvents,
  completionObject,
  logitsObject,
  STUB_CONTEXT,
  stubPromptTokens,
  usageFor,
} from './stub-answers.ts';

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

/**
 * The behaviours that answer with one OpenAI-format error: status, [type, code, message], headers, and whether the
 * request got as far as the ledger (it read the prompt, then failed) or was refused before any work.
 */
const CANNED_ERRORS: Partial<
  Record<StubBehaviour, { status: number; error: [string, string, string]; headers?: Record<string, string>; ledger: boolean }>
> = {
  fail500: { status: 500, error: ['server_error', 'internal_error', 'stub: internal failure'], ledger: true },
  fail503: {
    status: 503,
    error: ['backend_error', 'engine_unavailable', 'stub: the engine is unavailable'],
    headers: { 'retry-after': '5' },
    ledger: true,
  },
  unavailable: {
    status: 503,
    error: ['backend_error', 'loading', 'stub: model still loading'],
    headers: { 'retry-after': '7' },
    ledger: false,
  },
};

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

    const canned = CANNED_ERRORS[behaviour];
    if (canned) {
      if (canned.ledger) ledger('failed', 0);
      const [type, code, message] = canned.error;
      return json(res, canned.status, { error: { message, type, param: null, code } }, canned.headers);
    }
    if (behaviour === 'fail502') {
      res.writeHead(502, { 'content-type': 'text/html' });
      return void res.end('<html><body>502 Bad Gateway</body></html>');
    }
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
