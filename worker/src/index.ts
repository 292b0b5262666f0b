/** The edge worker: the public API of realign. Routes are wired here; logic lives in modules. */
import { Hono } from 'hono';
import type { AppEnv } from './app-env.ts';
import { apiKeyAuth } from './auth/api-key-auth.ts';
import { bodyGuard } from './http/body-guard.ts';
import { cors } from './http/cors.ts';
import { notFoundHandler, onError } from './http/error-response.ts';
import { requestId } from './http/request-id.ts';
import { adminApp } from './routes/admin/admin-app.ts';
import { generateHandler } from './routes/generate.ts';
import { healthzHandler, readyzHandler } from './routes/health.ts';
import { listModelsHandler, retrieveModelHandler } from './routes/models.ts';
import { listPresetsHandler } from './routes/presets.ts';
import { playgroundApp } from './playground/playground-app.ts';
import { readConfig } from './config.ts';
import { reconcileInFlight } from './usage/in-flight.ts';
import { consumeUsage } from './usage/usage-queue.ts';

export { RateLimiter } from './ratelimit/rate-limiter.ts';

const app = new Hono<AppEnv>();

app.use('*', requestId());
app.use('*', bodyGuard());
app.onError(onError);
// app.routes is read when a request misses, so routes registered below count
app.notFound(notFoundHandler(app.routes));

app.get('/healthz', healthzHandler);
app.get('/readyz', readyzHandler);

// CORS first: a browser's preflight carries no key
app.use('/v1/*', cors());
app.use('/v1/*', apiKeyAuth());
app.get('/v1/models', listModelsHandler);
// model ids may hold `/` (Hugging Face ids)
app.get('/v1/models/:model{.+}', retrieveModelHandler);
app.get('/v1/presets', listPresetsHandler);
app.post('/v1/chat/completions', generateHandler('chat'));
app.post('/v1/completions', generateHandler('completions'));
app.post('/v1/logits', generateHandler('logits'));

app.route('/admin', adminApp);
app.get('/playground/', (c) => c.redirect('/playground', 301));
app.route('/playground', playgroundApp);

/** Completes usage rows a dead edge left in flight (at most every few seconds per isolate; usage/in-flight.ts). */
async function reconcile(env: Env, force = false): Promise<void> {
  await reconcileInFlight(env.DB, readConfig(env), Date.now(), force);
}

export default {
  fetch: app.fetch,
  /** The usage queue's consumer (wrangler.toml `[[queues.consumers]]`): one D1 statement per batch. */
  queue: (batch: MessageBatch<unknown>, env: Env) => consumeUsage(batch, env, () => reconcile(env)),
  /** The cron trigger: completes rows left in flight even when no usage arrives. */
  scheduled: async (_event: ScheduledController, env: Env) => {
    await reconcile(env, true);
  },
} satisfies ExportedHandler<Env>;
