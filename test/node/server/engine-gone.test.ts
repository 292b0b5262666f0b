/**
 * An engine whose worker died is its model's state on the backend, not one request's failure: a generation that was
 * running and every new one get a 503 engine_unavailable (the edge then avoids the backend for that model and tries
 * another), never the generic 500 the edge would read as "this request failed on a healthy backend"
 * (shared/src/failure-scope.ts).
 * Readiness says so too — the edge's probe after its cooldown must not put the backend back for a model that cannot
 * serve — and stopping such a backend completes (its dead engine has nothing left to stop).
 */
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { ToWorker } from '../../../gpu-backend/src/engine/protocol.ts';
import { answerFailureScope } from '../../../shared/src/failure-scope.ts';
import { startBigramBackend, startTestBackend } from '../helpers/backend.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { errorOf, eventually, send } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

afterAll(() => cleanupTempDirs());

/**
 * Ends the engine's worker thread as a crash would (the main side is not told first). An idle engine is terminated;
 * a busy one is asked to exit at its next turn, between runs ('crash'): terminating a thread while an ONNX Runtime
 * call is in flight can abort the whole test process (koffi's async completion into a terminated thread).
 */
async function kill(engine: Engine, busy = false): Promise<void> {
  const worker = (engine as unknown as { worker: Worker }).worker;
  if (!busy) return void (await worker.terminate());
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage({ type: 'crash', code: 1 } satisfies ToWorker);
  await exited;
}

async function readiness(url: string): Promise<{ status: number; models: Record<string, string> }> {
  const res = await send(url, '/readyz');
  return { status: res.status, models: ((await res.json()) as { models: Record<string, string> }).models };
}

describe('a backend whose engine died', () => {
  it('answers the running generation and new ones with 503 engine_unavailable, is not ready, and stops', async () => {
    const { backend, engine } = await startBigramBackend('Dying!');
    let stopped = false;
    try {
      // a non-streamed generation long enough to be running when the engine goes
      const running = send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 2000, temperature: 0 });
      expect(await eventually(async () => (await engine.refreshStats()).running === 1, 5000)).toBe(true);
      expect((await readiness(backend.url)).status).toBe(200);
      await kill(engine, true);

      const during = await running;
      expect(during.status).toBe(503);
      const e1 = await errorOf(during);
      expect(e1).toMatchObject({ type: 'backend_error', code: 'engine_unavailable' });
      expect(answerFailureScope(during.status, { error: e1 })).toBe('model');

      for (const stream of [false, true]) {
        const after = await send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 4, stream });
        expect(after.status, `stream: ${stream}`).toBe(503);
        expect(await errorOf(after)).toMatchObject({ type: 'backend_error', code: 'engine_unavailable' });
      }

      // its only model cannot serve: not ready, and the body says why
      const ready = await readiness(backend.url);
      expect(ready.status).toBe(503);
      expect(ready.models.bigram).toMatch(/^failed: engine gone: /);

      // a dead engine has nothing to stop: stop() completes (it used to reject, skipping the connections' close)
      await backend.stop();
      stopped = true;
    } finally {
      if (!stopped) await backend.stop().catch(() => undefined);
    }
  });

  it('settles a stats request that was waiting on the worker when it died, and refuses later ones at once', async () => {
    const { backend, engine } = await startBigramBackend('Stats!');
    try {
      const hang = (ms: number) => new Promise<string>((r) => setTimeout(() => r('hang'), ms));
      // the worker is stopped before it can read the request: no answer will ever come (the old code waited forever)
      const dying = (engine as unknown as { worker: Worker }).worker.terminate();
      const pending = engine.refreshStats().then(
        () => 'resolved',
        (e: Error) => `rejected: ${e.message}`,
      );
      await dying;
      expect(await Promise.race([pending, hang(3000)])).toBe('rejected: the engine worker exited');
      // once the engine failed, a new stats request is refused at once too
      const later = engine.refreshStats().then(
        () => 'resolved',
        (e: Error) => `rejected: ${e.message}`,
      );
      expect(await Promise.race([later, hang(1000)])).toBe('rejected: the engine worker exited');
    } finally {
      await backend.stop();
    }
  });

  it('with another model serving: that model stays ready and serves, the dead one is failed with its reason', async () => {
    const backend = await startTestBackend([
      { id: 'alive', mode: 'single', model: bigramModel('Alive!').dir },
      { id: 'dead', mode: 'single', model: bigramModel('Dead!').dir },
    ]);
    try {
      await kill(backend.registry.models().find((m) => m.config.id === 'dead')!.engine);
      const ready = await readiness(backend.url);
      expect(ready.status).toBe(200);
      expect(ready.models).toMatchObject({ alive: 'ready', dead: expect.stringMatching(/^failed: engine gone: /) as string });
      const refused = await send(backend.url, '/v1/completions', { model: 'dead', prompt: 'De', max_tokens: 2 });
      expect(refused.status).toBe(503);
      expect(await errorOf(refused)).toMatchObject({ type: 'backend_error', code: 'engine_unavailable' });
      expect((await send(backend.url, '/v1/completions', { model: 'alive', prompt: 'Al', max_tokens: 2 })).status).toBe(200);
    } finally {
      await backend.stop();
    }
  });
});
