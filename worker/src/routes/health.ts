/**
 * `GET /healthz`: the worker is alive. `GET /readyz`: at least one backend answers its `/readyz` (each probe also
 * updates the passive health record). Backend addresses are not revealed: entries are numbered.
 */
import type { Handler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { readConfig } from '../config.ts';
import { healthBook } from '../routing/health-book.ts';
import { probeAndRecord } from '../routing/probe.ts';

/** Liveness. */
export const healthzHandler: Handler<AppEnv> = (c) => c.json({ ok: true });

/** Readiness, probing every configured backend. */
export const readyzHandler: Handler<AppEnv> = async function readyz(c) {
  const config = readConfig(c.env);
  const results = await Promise.all(
    config.backends.map(async (b, index) => {
      const r = await probeAndRecord(healthBook, b.url, config);
      return { backend: index, ready: r.ok, ...(r.ok ? {} : { reason: r.reason }) };
    }),
  );
  const ready = results.some((r) => r.ready);
  return c.json({ ready, backends: results }, ready ? 200 : 503);
};
