/** GET /v1/models, /v1/models/{id} (OpenAI's model objects with realign's fields) and /metrics (Prometheus). */
import type { Context } from 'hono';
import { ApiError } from '../../../../shared/src/errors.ts';
import type { BackendEnv } from '../http-types.ts';
import type { BackendMetrics } from '../metrics.ts';
import type { ModelRegistry, ServedModel } from '../registry.ts';

function modelObject(m: ServedModel) {
  return {
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
      // the named adapters a request may choose with `adapter` or `mix` (the first is the default), if any
      ...(m.engine.info.adapters?.length ? { adapters: m.engine.info.adapters } : {}),
    },
  };
}

/** GET /v1/models: every served model. */
export function modelsRoute(registry: ModelRegistry) {
  return (c: Context<BackendEnv>) => c.json({ object: 'list', data: registry.models().map(modelObject) });
}

/** GET /v1/models/{id}: one model object; 404 for an unknown id, 503 while it loads or when it failed. */
export function modelRoute(registry: ModelRegistry) {
  return (c: Context<BackendEnv>) => {
    const m = registry.get(c.req.param('model')!);
    if (m instanceof ApiError) throw m;
    return c.json(modelObject(m));
  };
}

/** GET /metrics: the engines' gauges read now, then every metric in Prometheus' text format. */
export function metricsRoute(registry: ModelRegistry, metrics: BackendMetrics) {
  return async (c: Context<BackendEnv>) => {
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
  };
}
