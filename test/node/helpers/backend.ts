/** A real backend on loopback for tests: tiny models, a random port, bearer and HMAC credentials. */
import pino, { type Logger } from 'pino';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import { parseServerConfig, type ServerConfig } from '../../../gpu-backend/src/server/config.ts';
import { startBackend, type RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { bigramModel } from './bigram.ts';
import { tempDir } from './models.ts';

export const TEST_TOKEN = 'test-token-0123456789';
export const TEST_SECRET = 'test-hmac-secret-0123456789';

/**
 * Starts a backend serving `models` (raw models.json entries) and waits until they are loaded. `extra` adds
 * top-level config fields; `logger` replaces the silent default (REALIGN_TEST_LOGS=1 shows logs).
 */
export async function startTestBackend(
  models: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
  logger?: Logger,
): Promise<RunningBackend & { config: ServerConfig }> {
  const config = parseServerConfig(
    {
      models: models.map((m) => ({ device: 'cpu', threads: 1, ...m })),
      graph_cache: tempDir('realign-graphs-'),
      shutdown_grace_ms: 5000,
      ...extra,
    },
    '/',
  );
  const backend = await startBackend(config, {
    port: 0,
    logger: logger ?? pino({ level: process.env.REALIGN_TEST_LOGS ? 'info' : 'silent' }),
    env: { REALIGN_HMAC_SECRET: TEST_SECRET, REALIGN_API_TOKENS: TEST_TOKEN },
  });
  await backend.registry.loaded;
  if (Object.values(backend.registry.status()).some((s) => s !== 'ready'))
    throw new Error(`backend models failed: ${JSON.stringify(backend.registry.status())}`);
  return { ...backend, config };
}

/**
 * Starts a backend serving the bigram checkpoint that spells `text` (bigram.ts) as the single model "bigram";
 * `model` adds models.json fields. Returns the backend, the model's engine and the text's token cycle.
 */
export async function startBigramBackend(
  text: string,
  model: Record<string, unknown> = {},
): Promise<{ backend: RunningBackend; engine: Engine; cycle: number[] }> {
  const bigram = bigramModel(text);
  const backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigram.dir, ...model }]);
  return { backend, engine: backend.registry.models()[0].engine, cycle: bigram.cycle };
}
