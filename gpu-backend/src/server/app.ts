/**
 * The backend's HTTP app: routes wired to their handlers, request ids and logs around every request, and one
 * place that turns any error into OpenAI's error JSON.
 */
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { allowedMethods, methodNotAllowed } from '../../../shared/src/allowed-methods.ts';
import { ApiError, notFound, serviceUnavailable, toApiError } from '../../../shared/src/errors.ts';
import { authenticate, type AuthOptions } from './auth.ts';
import { readBody } from './body.ts';
import type { ServerConfig } from './config.ts';
import type { BackendEnv } from './http-types.ts';
import type { BackendMetrics } from './metrics.ts';
import type { ModelRegistry, ServedModel } from './registry.ts';
import { generationRoute } from './routes/generate.ts';
import { logitsRoute } from './routes/logits.ts';
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

/** Builds the Hono app. */
export function createApp(deps: AppDeps): Hono<BackendEnv> {
  const app = new Hono<BackendEnv>();
  const { metrics, registry } = deps;

  app.use('*', async function requestContext(c, next) {
    const given = c.req.header('x-request-id');
    const requestId = given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : crypto.randomUUID();
    c.set('requestId', requestId);
    const log = deps.logger.child({ requestId });
    c.set('log', log);
    const started = performance.now();
    await next();
    c.res.headers.set('x-request-id', requestId);
    const route = c.req.routePath;
    metrics.requests.inc({ route, status: String(c.res.status) });
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
  });

  app.onError((err, c) => {
    const e = toApiError(err);
    if (!(err instanceof ApiError)) c.get('log')?.error({ err: err.message, stack: err.stack }, 'unhandled error');
    const headers: Record<string, string> = {};
    if (e.retryAfterSeconds !== undefined) headers['retry-after'] = String(e.retryAfterSeconds);
    // the rest of the body is never read (too large, too slow, or refused before reading): a client must not reuse
    // this connection
    if (e.status === 413 || e.status === 408 || (c.get('body') === undefined && declaresBody(c.req.raw)))
      headers.connection = 'close';
    return c.json(e.toBody(), e.status as 400, headers);
  });

  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const allowed = allowedMethods(app.routes, path);
    if (allowed.length > 0)
      return c.json(methodNotAllowed(c.req.method, path, allowed).toBody(), 405, { allow: allowed.join(', ') });
    const e = notFound(
      `no route ${c.req.method} ${path}; see /v1/models, /v1/chat/completions, /v1/completions, /v1/logits`,
      'unknown_route',
    );
    return c.json(e.toBody(), 404);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', (c) => {
    const ready = registry.ready && deps.accepting();
    return c.json({ ready, accepting: deps.accepting(), models: registry.status() }, ready ? 200 : 503);
  });

  // credentials are checked before the body is read, a signature over the body after it
  const auth = authenticate(deps.auth);
  const guard = [
    async function accepting(_c: unknown, next: () => Promise<void>) {
      if (!deps.accepting())
        throw serviceUnavailable('the server is shutting down; retry on another backend', 1, 'shutting_down');
      await next();
    },
    auth.beforeBody,
    readBody(deps.config.limits.max_body_bytes, deps.config.limits.body_timeout_ms),
    auth.afterBody,
  ] as const;

  app.get('/metrics', ...guard, async (c) => {
    for (const m of registry.models()) {
      const s = m.engine.stats;
      if (!s) continue;
      const l = { model: m.config.id };
      metrics.batchSize.set(l, s.lastBatchSize);
      metrics.queueDepth.set(l, s.queued);
      metrics.running.set(l, s.running);
      metrics.kvUsed.set(l, s.kvTokensUsed);
      metrics.kvBudget.set(l, s.kvTokensBudget);
      metrics.kvBytes.set(l, s.kvBytesAllocated);
      metrics.forwardPassesSoFar(m.config.id, s.forwardPasses);
    }
    return c.text(await metrics.render(), 200, { 'content-type': metrics.contentType });
  });

  const modelObject = (m: ServedModel) => ({
    id: m.config.id,
    object: 'model',
    created: m.created,
    owned_by: 'realign',
    realign: {
      mode: m.config.mode,
      default_lambda: m.config.default_lambda,
      lambda_range: m.config.lambda_range,
      max_context: m.engine.info.maxContext,
      device: m.engine.info.device,
    },
  });
  app.get('/v1/models', ...guard, (c) => c.json({ object: 'list', data: registry.models().map(modelObject) }));
  // OpenAI's `models.retrieve`: one model object (ids may hold `/`, as Hugging Face ids do); 404 for an unknown id,
  // 503 while it loads or when it failed
  app.get('/v1/models/:model{.+}', ...guard, (c) => {
    const m = registry.get(c.req.param('model'));
    if (m instanceof ApiError) throw m;
    return c.json(modelObject(m));
  });

  const ledger = new UsageLedger(metrics);
  const genDeps = { registry, config: deps.config, metrics, ledger };
  app.post('/v1/chat/completions', ...guard, generationRoute('chat', genDeps));
  app.post('/v1/completions', ...guard, generationRoute('completions', genDeps));
  app.post('/v1/logits', ...guard, logitsRoute(genDeps));
  app.get('/ledger/:dispatchId', ...guard, ledgerRoute(ledger));
  return app;
}
