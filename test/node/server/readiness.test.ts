/**
 * Readiness with a model that fails to load: the failure is logged as an error; /readyz is 200 once every model
 * has either loaded or definitively failed and at least one serves, and its body names each model's state; the
 * failed model answers 503 model_unavailable while the others serve; a backend whose every model failed is not
 * ready.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../../gpu-backend/src/server/config.ts';
import { startBackend, type RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { TEST_SECRET, TEST_TOKEN } from '../helpers/backend.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';

const running: RunningBackend[] = [];
afterAll(async () => {
  for (const b of running) await b.stop();
  cleanupTempDirs();
});

/** A backend over `models` whose log lines are kept (parsed). */
async function start(models: Record<string, unknown>[]): Promise<{ backend: RunningBackend; logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const config = parseServerConfig(
    {
      models: models.map((m) => ({ device: 'cpu', threads: 1, ...m })),
      graph_cache: tempDir('realign-graphs-'),
      shutdown_grace_ms: 1000,
    },
    '/',
  );
  const backend = await startBackend(config, {
    port: 0,
    logger,
    env: { REALIGN_HMAC_SECRET: TEST_SECRET, REALIGN_API_TOKENS: TEST_TOKEN },
  });
  running.push(backend);
  return { backend, logs };
}

/** A model folder with weights' config but no tokenizer.json: it fails to load, every time. */
function brokenModel(): string {
  const dir = join(tempDir('realign-broken-'), 'model');
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('readiness with a model that fails to load', () => {
  it('one good, one broken: the failure is an error log, /readyz is 200 naming both states, the good model serves', async () => {
    const { backend, logs } = await start([
      { id: 'good', mode: 'single', model: bigramModel('ready').dir },
      { id: 'broken', mode: 'single', model: brokenModel() },
    ]);
    await backend.registry.loaded;
    const failure = logs.find((l) => l.msg === 'model failed to load');
    expect(failure, JSON.stringify(logs)).toMatchObject({ level: 50, model: 'broken' });
    const ready = await send(backend.url, '/readyz');
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { ready: boolean; models: Record<string, string> };
    expect(body.ready).toBe(true);
    expect(body.models.good).toBe('ready');
    expect(body.models.broken).toMatch(/^failed: /);
    expect((await send(backend.url, '/v1/completions', { model: 'good', prompt: 're', max_tokens: 2 })).status).toBe(200);
    const refused = await send(backend.url, '/v1/completions', { model: 'broken', prompt: 're', max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(await errorOf(refused)).toMatchObject({ code: 'model_unavailable' });
  });

  it('every model failed: /readyz stays 503 and says why', async () => {
    const { backend } = await start([{ id: 'broken', mode: 'single', model: brokenModel() }]);
    await backend.registry.loaded;
    const ready = await send(backend.url, '/readyz');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { models: Record<string, string> }).models.broken).toMatch(/^failed: /);
  });
});
