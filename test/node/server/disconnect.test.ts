/**
 * A client that goes away cancels its generation: its rows and KV tokens are freed and decoding stops long before
 * max_tokens. The bigram checkpoint spells a known text forever (it never samples EOS), so a generation only ends
 * early when it is cancelled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { EngineStats } from '../../../gpu-backend/src/engine/protocol.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { startBigramBackend } from '../helpers/backend.ts';
import { eventually, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

const TEXT = 'Stream世界🙂ж✓ŋ';
/** ~1 ms per token on the tiny model: a whole generation takes seconds, cancellation takes one step */
const MAX_TOKENS = 2000;
let backend: RunningBackend;
let engine: Engine;
let cycle: number[];

beforeAll(async () => {
  ({ backend, engine, cycle } = await startBigramBackend(TEXT));
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const generated = (s: EngineStats) => s.completionTokens.aligned;
const idle = (s: EngineStats) =>
  s.running === 0 && s.queued === 0 && s.rows === 0 && s.kvTokensUsed === 0 && s.kvTokensReserved === 0;

/** Waits (up to 5 s) until the engine holds nothing; returns the tokens generated since `before`. */
async function waitIdle(before: EngineStats): Promise<number> {
  let last = before;
  const freed = await eventually(async () => idle((last = await engine.refreshStats())), 5000);
  expect(freed, `engine still busy: ${JSON.stringify(last)}`).toBe(true);
  return generated(last) - generated(before);
}

describe('client disconnects', () => {
  it('aborting a stream mid-way frees its rows and stops decoding', async () => {
    const before = await engine.refreshStats();
    const abort = new AbortController();
    const res = await send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: MAX_TOKENS, temperature: 0, stream: true },
      { signal: abort.signal },
    );
    expect(res.status).toBe(200);
    let text = '';
    let events = 0;
    for await (const data of sseData(res)) {
      text += (JSON.parse(data) as { choices: { text: string }[] }).choices[0].text;
      if (++events === 5) break;
    }
    expect(TEXT.repeat(4)).toContain(text);
    const during = await engine.refreshStats();
    expect(during.running).toBe(1);
    expect(during.rows).toBeGreaterThan(0);
    abort.abort();
    const tokens = await waitIdle(before);
    expect(tokens).toBeGreaterThanOrEqual(5);
    expect(tokens).toBeLessThan(MAX_TOKENS);
  });

  it('aborting a non-streamed request while it decodes frees its rows too', async () => {
    const before = await engine.refreshStats();
    const abort = new AbortController();
    const pending = send(
      backend.url,
      '/v1/chat/completions',
      { model: 'bigram', messages: [{ role: 'user', content: 'go' }], max_tokens: MAX_TOKENS, temperature: 0 },
      { signal: abort.signal },
    );
    const outcome = pending.then(
      () => 'answered',
      (e: Error) => e.name,
    );
    expect(await eventually(async () => generated(await engine.refreshStats()) - generated(before) >= 20, 5000)).toBe(true);
    abort.abort();
    expect(await outcome).toBe('AbortError');
    const tokens = await waitIdle(before);
    expect(tokens).toBeLessThan(MAX_TOKENS);
  });

  it('the server keeps serving: a full stream after the aborted ones ends with [DONE]', async () => {
    const res = await send(backend.url, '/v1/completions', {
      model: 'bigram',
      prompt: 'go',
      max_tokens: cycle.length * 3,
      temperature: 0,
      stream: true,
    });
    const data: string[] = [];
    for await (const d of sseData(res)) data.push(d);
    expect(data.at(-1)).toBe('[DONE]');
    const text = data
      .slice(0, -1)
      .map((d) => (JSON.parse(d) as { choices: { text: string }[] }).choices[0]?.text ?? '')
      .join('');
    expect(text).toBe(TEXT.repeat(3));
    expect(idle(await engine.refreshStats())).toBe(true);
  });
});
