/**
 * The backend's HTTP app: routes wired to their handlers, request ids and logs around every request, and one
 * place that turns any error into OpenAI's error JSON.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { allowedMethods, methodNotAllowed } from '../../../shared/src/allowed-methods.ts';
import { ApiError, notFound, serviceUnavailable, toApiError } from '../../../shared/src/errors.ts';
import { HEADERS } from '../../../shared/src/headers.ts';
import { authenticate, type AuthOptions } from './auth.ts';
import { readBody } from './body.ts';
import type { ServerConfig } from './config.ts';
import type { BackendEnv } from './http-types.ts';
import type { BackendMetrics } from './metrics.ts';
import type { ModelRegistry } from './registry.ts';
import { generationRoute } from './routes/generate.ts';
import { logitsRoute } from './routes/logits.ts';
import { metricsRoute, modelRoute, modelsRoute } from './routes/models.ts';
import { ledgerRoute, UsageLedger } from './usage-ledger.ts';

/** What the app is built from. */
export interface AppDeps {
  config: ServerConfig;
  registry: ModelRegistry;
  metrics: BackendMetrics;
  auth: AuthOptions;
  logger: Logger;
  /** false once shutdown began: new requests get 503 */
  accepting: () => boolean;
}

/** Whether a request announces a body (which an early answer leaves unread). */
function declaresBody(req: Request): boolean {
  const length = req.headers.get('content-length');
  return (length !== null && length !== '0') || req.headers.has('transfer-encoding');
}

/** Request id, child logger, metrics and the access log line around every request. */
function requestContext(deps: AppDeps): MiddlewareHandler<BackendEnv> {
  return async function requestContext(c, next) {
    const given = c.req.header(HEADERS.requestId);
    const requestId = given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : crypto.randomUUID();
    c.set('requestId', requestId);
    const log = deps.logger.child({ requestId });
    c.set('log', log);
    const started = performance.now();
    await next();
    c.res.headers.set(HEADERS.requestId, requestId);
    const route = c.req.routePath;
    deps.metrics.requests.inc({ route, status: String(c.res.status) });
    log.info(
      {
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        auth: c.get('auth'),
      },
      'request',
    );
  };
}

/** The one place that turns any error into OpenAI's error JSON. */
function errorAnswer(err: Error, c: Context<BackendEnv>): Response {
  const e = toApiError(err);
  if (!(err instanceof ApiError)) c.get('log')?.error({ err: err.message, stack: err.stack }, 'unhandled error');
  const headers: Record<string, string> = {};
  if (e.retryAfterSeconds !== undefined) headers[HEADERS.retryAfter] = String(e.retryAfterSeconds);
  // the rest of the body is never read (too large, too slow, or refused before reading): a client must not reuse
  // this connection
  if (e.status === 413 || e.status === 408 || (c.get('body') === undefined && declaresBody(c.req.raw)))
    headers.connection = 'close';
  return c.json(e.toBody(), e.status as 400, headers);
}

function notFoundAnswer(app: Hono<BackendEnv>, c: Context<BackendEnv>): Response {
  const path = new URL(c.req.url).pathname;
  const allowed = allowedMethods(app.routes, path);
  if (allowed.length > 0)
    return c.json(methodNotAllowed(c.req.method, path, allowed).toBody(), 405, { allow: allowed.join(', ') });
  const e = notFound(
    `no route ${c.req.method} ${path}; see /v1/models, /v1/chat/completions, /v1/completions, /v1/logits`,
    'unknown_route',
  );
  return c.json(e.toBody(), 404);
}

/** The checks before a route: not shutting down, credentials before the body, a signature over the body after it. */
function guards(deps: AppDeps) {
  const auth = authenticate(deps.auth);
  return [
    async function accepting(_c: unknown, next: () => Promise<void>) {
      if (!deps.accepting())
        throw serviceUnavailable('the server is shutting down; retry on another backend', 1, 'shutting_down');
      await next();
    },
    auth.beforeBody,
    readBody(deps.config.limits.max_body_bytes, deps.config.limits.body_timeout_ms),
    auth.afterBody,
  ] as const;
}

/** Builds the Hono app. */
export function createApp(deps: AppDeps): Hono<BackendEnv> {
  const app = new Hono<BackendEnv>();
  const { metrics, registry } = deps;
  app.use('*', requestContext(deps));
  app.onError(errorAnswer);
  app.notFound((c) => notFoundAnswer(app, c));
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => {
    const ready = registry.ready && deps.accepting();
    return c.json({ ready, accepting: deps.accepting(), models: registry.status() }, ready ? 200 : 503);
  });
  const guard = guards(deps);
  app.get('/metrics', ...guard, metricsRoute(registry, metrics));
  app.get('/v1/models', ...guard, modelsRoute(registry));
  // OpenAI's `models.retrieve`: one model object (ids may hold `/`, as Hugging Face ids do); 404 for an unknown id,
  // 503 while it loads or when it failed
  app.get('/v1/models/:model{.+}', ...guard, modelRoute(registry));
  const ledger = new UsageLedger(metrics);
  const routeDeps = { registry, config: deps.config, metrics, ledger };
  app.post('/v1/chat/completions', ...guard, generationRoute('chat', routeDeps));
  app.post('/v1/completions', ...guard, generationRoute('completions', routeDeps));
  app.post('/v1/logits', ...guard, logitsRoute(routeDeps));
  app.get('/ledger/:dispatchId', ...guard, ledgerRoute(ledger));
  return app;
}
