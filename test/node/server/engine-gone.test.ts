/**
 * An engine whose worker died is the backend's state, not one request's failure: a generation that was running
 * and every new one get a 503 engine_unavailable (the edge then avoids the backend and tries another), never the
 * generic 500 the edge would read as "this request failed on a healthy backend" (shared/src/failure-scope.ts).
 */
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { answerFailureScope } from '../../../shared/src/failure-scope.ts';
import { startBigramBackend } from '../helpers/backend.ts';
import { errorOf, eventually, send } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

afterAll(() => cleanupTempDirs());

describe('a backend whose engine died', () => {
  it('answers the running generation and new ones with 503 engine_unavailable', async () => {
    const { backend, engine } = await startBigramBackend('Dying!');
    try {
      // a non-streamed generation long enough to be running when the engine goes
      const running = send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 2000, temperature: 0 });
      expect(await eventually(async () => (await engine.refreshStats()).running === 1, 5000)).toBe(true);
      await (engine as unknown as { worker: Worker }).worker.terminate();

      const during = await running;
      expect(during.status).toBe(503);
      const e1 = await errorOf(during);
      expect(e1).toMatchObject({ type: 'backend_error', code: 'engine_unavailable' });
      expect(answerFailureScope(during.status, { error: e1 })).toBe('backend');

      for (const stream of [false, true]) {
        const after = await send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 4, stream });
        expect(after.status, `stream: ${stream}`).toBe(503);
        expect(await errorOf(after)).toMatchObject({ type: 'backend_error', code: 'engine_unavailable' });
      }
    } finally {
      // stopping a backend whose engine is gone rejects (Engine.shutdown posts to the dead worker): not under test here
      await backend.stop().catch(() => undefined);
    }
  });
});
