/**
 * Graceful shutdown: once stop() begins, new requests are turned away (the listener closes, so a fresh connection
 * is refused; a request that still reaches the app gets 503 shutting_down), in-flight streams finish within the
 * grace period, and what outlives a short grace period is cut: an error event for a stream, a 503 for a request
 * still queued, never a hang (every wait here is bounded). Work refused or cut because the backend stops is the
 * backend's state, 503 `shutting_down` (scope 'backend', shared/src/failure-scope.ts) — not `engine_unavailable`,
 * which the edge reads as one model's engine gone — and the usage the backend counts for it is what its engine
 * generated.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { answerFailureScope, streamErrorScope } from '../../../shared/src/failure-scope.ts';
import { eventually, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

const TEXT = 'Halt世界🙂ж✓ŋ';
const bigram = bigramModel(TEXT);

afterAll(() => cleanupTempDirs());

/** How a request during shutdown was turned away. */
type TurnedAway = { refused: true } | { refused: false; status: number; body: unknown; retryAfter: string | null };

/** Sends a request on a fresh connection; a refused connection is an answer too. */
async function attempt(backend: RunningBackend, path: string, body?: unknown): Promise<TurnedAway> {
  try {
    const res = await send(backend.url, path, body);
    return { refused: false, status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') };
  } catch (err) {
    expect((err as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    return { refused: true };
  }
}

/** A refused connection, or exactly the 503 the app answers while shutting down. */
function expectTurnedAway(r: TurnedAway, expected: unknown): void {
  if (r.refused) return;
  expect(r.status).toBe(503);
  expect(r.body).toMatchObject(expected as object);
}

/** Reads a stream to its end (or until `limitMs`): its text, its last data, any error event, whether it timed out. */
async function drain(
  res: Response,
  limitMs: number,
): Promise<{
  text: string;
  last: string | null;
  error: { code: string; type: string } | null;
  timedOut: boolean;
  broken: boolean;
}> {
  const out = {
    text: '',
    last: null as string | null,
    error: null as { code: string; type: string } | null,
    timedOut: false,
    broken: false,
  };
  const read = (async () => {
    try {
      for await (const data of sseData(res)) {
        out.last = data;
        if (data === '[DONE]') continue;
        const chunk = JSON.parse(data) as { choices?: { text: string }[]; error?: { code: string; type: string } };
        if (chunk.error) out.error = chunk.error;
        else out.text += chunk.choices?.[0]?.text ?? '';
      }
    } catch {
      out.broken = true; // the connection was closed under the reader
    }
  })();
  let timer!: NodeJS.Timeout;
  const timeout = new Promise<void>((r) => (timer = setTimeout(() => ((out.timedOut = true), r()), limitMs)));
  await Promise.race([read, timeout]);
  clearTimeout(timer);
  return out;
}

/**
 * The usage the backend counted for all requests (its ledger's token metrics) equals what the engine generated and
 * read, and the engine did generate something.
 */
async function expectUsageIsEngines(backend: RunningBackend, engine: Engine): Promise<void> {
  const counted = async (c: typeof backend.metrics.completionTokens) =>
    (await c.get()).values.reduce((sum, v) => sum + v.value, 0);
  const stats = engine.stats!;
  expect(stats.completionTokens.aligned).toBeGreaterThan(0);
  expect(await counted(backend.metrics.completionTokens)).toBe(stats.completionTokens.aligned + stats.completionTokens.reference);
  expect(await counted(backend.metrics.promptTokens)).toBe(stats.promptTokens.aligned + stats.promptTokens.reference);
}

describe('graceful shutdown', () => {
  it('with a long grace period: new requests are turned away, /readyz is not ready, the in-flight stream ends with [DONE]', async () => {
    const backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigram.dir }], { shutdown_grace_ms: 20_000 });
    const rounds = 60; // ~700 tokens: long enough to be running while stop() begins
    const res = await send(backend.url, '/v1/completions', {
      model: 'bigram',
      prompt: 'go',
      max_tokens: bigram.cycle.length * rounds,
      temperature: 0,
      stream: true,
    });
    expect(res.status).toBe(200);
    const stopped = backend.stop().then(() => Date.now());

    const ready = await attempt(backend, '/readyz');
    expectTurnedAway(ready, { ready: false, accepting: false });
    const fresh = await attempt(backend, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 2 });
    expectTurnedAway(fresh, { error: { code: 'shutting_down', type: 'backend_error' } });
    if (!fresh.refused) expect(fresh.retryAfter).toBe('1');

    const running = (await backend.registry.models()[0].engine.refreshStats()).running;
    expect(running).toBe(1); // the stream was still generating while the new requests were turned away
    const stream = await drain(res, 15_000);
    const streamEnded = Date.now();
    expect(stream).toMatchObject({ timedOut: false, broken: false, error: null, last: '[DONE]' });
    expect(stream.text).toBe(TEXT.repeat(rounds));
    expect(await stopped).toBeGreaterThanOrEqual(streamEnded - 50); // stop() waited for it
  });

  it('with a tiny grace period: the running stream ends with a shutting_down error event, the queued request gets 503 shutting_down, nothing hangs, usage is exact', async () => {
    const backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigram.dir, max_batch: 1 }], {
      shutdown_grace_ms: 50,
    });
    const res = await send(backend.url, '/v1/completions', {
      model: 'bigram',
      prompt: 'go',
      max_tokens: 2000,
      temperature: 0,
      stream: true,
    });
    expect(res.status).toBe(200);
    // a second request waits in the queue behind the first (max_batch 1)
    const queued = send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 5 }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
      (e: Error) => ({ status: 0, body: e.message }),
    );
    const engine = backend.registry.models()[0].engine;
    expect(await eventually(async () => (await engine.refreshStats()).queued === 1, 5000)).toBe(true);

    const t0 = Date.now();
    const stopped = backend.stop();
    const stream = await drain(res, 10_000);
    expect(stream.timedOut).toBe(false);
    expect(stream.last).not.toBe('[DONE]');
    // cut with an error event that says why (the stop flushes it before closing the sockets)
    expect(stream).toMatchObject({ broken: false, error: { type: 'backend_error', code: 'shutting_down' } });
    expect(streamErrorScope({ error: { message: '', type: 'backend_error', param: null, code: 'shutting_down' } })).toBe(
      'backend',
    );
    expect(stream.text.length).toBeLessThan(TEXT.length * (2000 / bigram.cycle.length));

    const q = await Promise.race([queued, new Promise((r) => setTimeout(() => r('hang'), 10_000))]);
    expect(q).not.toBe('hang');
    const { status, body } = q as { status: number; body: unknown };
    expect({ status, body }).toMatchObject({
      status: 503,
      body: { error: { type: 'backend_error', code: 'shutting_down' } },
    });
    expect(answerFailureScope(status, body)).toBe('backend');
    await stopped;
    expect(Date.now() - t0).toBeLessThan(10_000);

    // the usage counted for every request (the ledger's totals) is what the engine generated: the cut stream's
    // tokens to the last one, nothing for the request that never ran
    await expectUsageIsEngines(backend, engine);
  });

  it('n = 2 with one choice running and its sibling queued behind it: 503 shutting_down, and the running choice is counted', async () => {
    const backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigram.dir, max_batch: 1 }], {
      shutdown_grace_ms: 50,
    });
    // the request waits for both choices' first events; choice 1 waits in the queue until choice 0 ends
    const answer = send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 2000, n: 2 }).then(
      async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
      (e: Error) => ({ status: 0, body: e.message }),
    );
    const engine = backend.registry.models()[0].engine;
    const underWay = async () => {
      const s = await engine.refreshStats();
      return s.queued === 1 && s.completionTokens.aligned > 0;
    };
    expect(await eventually(underWay, 5000)).toBe(true);
    await backend.stop();
    const a = await Promise.race([answer, new Promise((r) => setTimeout(() => r('hang'), 5000))]);
    expect(a).toMatchObject({ status: 503, body: { error: { type: 'backend_error', code: 'shutting_down' } } });
    // the tokens choice 0 generated before the shutdown cut it are the request's usage (the old code counted none)
    await expectUsageIsEngines(backend, engine);
  });
});
