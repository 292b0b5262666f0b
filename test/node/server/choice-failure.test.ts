/**
 * One failed choice of an n > 1 request (its row failed) fails the whole request, so its other choices are cancelled
 * at once instead of generating on to max_tokens in the shared batch, and the answer — a 500 JSON error, or a
 * stream's error event — goes out only once the engine has ended them: by then the backend's ledger holds the
 * request's final usage (state `failed`, every token the engine generated for it), which is what the edge reads for
 * a request that ended with an error (server/generation/choices.ts).
 *
 * The failing choice is injected at the engine facade (choice 1 of the request); choice 0 runs on the real engine
 * (the bigram checkpoint spells its text forever, so it only ends early when it is cancelled).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine, Generation } from '../../../gpu-backend/src/engine/engine.ts';
import type { EngineStats, GenerateEvent, GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import type { Usage } from '../../../shared/src/responses.ts';
import { startBigramBackend } from '../helpers/backend.ts';
import { errorOf, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

const TEXT = 'Sibling世界🙂ж✓ŋ';
/** ~1 ms per token on the tiny model: the sibling alone would run for seconds */
const MAX_TOKENS = 2000;
/** tokens the failing choice reports before its row fails */
const FAILED_TOKENS = 2;
let backend: RunningBackend;
let engine: Engine;
let cycle: number[];

beforeAll(async () => {
  ({ backend, engine, cycle } = await startBigramBackend(TEXT));
  const real = engine.generate.bind(engine);
  // choice 1 of every request: a row that generates FAILED_TOKENS tokens, a few ms apart, then fails
  engine.generate = (job: Omit<GenerateJob, 'id'>): Generation =>
    job.stream !== 1
      ? real(job)
      : {
          cancel: () => {},
          events: (async function* (): AsyncGenerator<GenerateEvent> {
            for (let i = 0; i < FAILED_TOKENS; i++) {
              if (i > 0) await new Promise((r) => setTimeout(r, 30));
              yield { id: -1, text: 'x', tokens: [{ id: cycle[i % cycle.length]! }] };
            }
            await new Promise((r) => setTimeout(r, 30));
            yield {
              id: -1,
              text: '',
              tokens: [],
              finish: 'error',
              error: { message: 'injected row fault', code: 'sequence_failed' },
            };
          })(),
        };
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const generated = (s: EngineStats) => s.completionTokens.aligned + s.completionTokens.reference;

/** The backend's ledger record of `dispatchId`, asked as the edge asks. */
async function ledger(dispatchId: string): Promise<{ state: string; usage: Usage }> {
  const res = await send(backend.url, `/ledger/${dispatchId}`, undefined, { auth: 'hmac' });
  expect(res.status).toBe(200);
  return (await res.json()) as { state: string; usage: Usage };
}

/** Right after the error answer: no sibling still runs, and the ledger is final with every token generated. */
async function expectSettled(before: EngineStats, dispatchId: string): Promise<void> {
  const [after, record] = await Promise.all([engine.refreshStats(), ledger(dispatchId)]);
  expect(after.running).toBe(0);
  expect(after.queued).toBe(0);
  const sibling = generated(after) - generated(before);
  expect(sibling).toBeGreaterThan(0);
  expect(sibling).toBeLessThan(MAX_TOKENS);
  expect(record.state).toBe('failed');
  expect(record.usage.completion_tokens).toBe(sibling + FAILED_TOKENS);
  expect(record.usage.total_tokens).toBe(record.usage.prompt_tokens + sibling + FAILED_TOKENS);
}

describe('a failed choice of an n = 2 request', () => {
  it('non-streamed: 500 with the row error, the sibling was cancelled before the answer, the ledger is exact', async () => {
    const before = await engine.refreshStats();
    const dispatchId = `choice-fail-${Date.now()}`;
    const res = await send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: MAX_TOKENS, temperature: 0, n: 2 },
      { headers: { 'x-realign-dispatch-id': dispatchId } },
    );
    expect(res.status).toBe(500);
    expect(await errorOf(res)).toMatchObject({ type: 'server_error', code: 'sequence_failed' });
    await expectSettled(before, dispatchId);
  });

  it('streamed: an error event after the sibling ended, no sibling token after the failure, the ledger is exact', async () => {
    const before = await engine.refreshStats();
    const dispatchId = `choice-fail-stream-${Date.now()}`;
    const res = await send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: MAX_TOKENS, temperature: 0, n: 2, stream: true },
      { headers: { 'x-realign-dispatch-id': dispatchId } },
    );
    expect(res.status).toBe(200);
    const data: string[] = [];
    let error: { type: string; code: string } | null = null;
    for await (const d of sseData(res)) {
      data.push(d);
      const chunk = JSON.parse(d) as { error?: { type: string; code: string } };
      if (chunk.error) {
        error = chunk.error;
        await expectSettled(before, dispatchId); // checked as the error event arrives, before the stream ends
      }
    }
    expect(error).toMatchObject({ type: 'server_error', code: 'sequence_failed' });
    // the error event is the last thing sent: no [DONE], no sibling tokens after it
    expect(JSON.parse(data.at(-1)!)).toHaveProperty('error');
  });
});
