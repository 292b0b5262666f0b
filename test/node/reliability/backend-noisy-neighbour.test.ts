/**
 * A noisy neighbour cannot stall other tenants: 16 requests with 1 MB prompts (completions and chat) are refused
 * before they are tokenized (their size alone proves them over the model's context), tokenizing happens on the
 * model's tokenizer thread, and another client's 20-token stream meanwhile takes about as long as it does alone.
 * Checked by the tokenizer thread's counters (no oversized prompt tokenized), the event loop's longest hold and
 * the stream's latency relative to its latency alone (generous, since this machine's speed varies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import type { ServedModel } from '../../../gpu-backend/src/server/registry.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { errorOf, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

const TEXT = 'neighbourly';
let backend: RunningBackend;
let model: ServedModel;

beforeAll(async () => {
  backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigramModel(TEXT).dir, max_context: 64 }], {
    limits: { max_body_bytes: 2 << 20 },
  });
  model = backend.registry.models()[0];
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

/** The victim: a 20-token stream read to its end; its latency in ms. */
async function victim(): Promise<number> {
  const started = performance.now();
  const res = await send(backend.url, '/v1/completions', {
    model: 'bigram',
    prompt: 'hi',
    max_tokens: 20,
    temperature: 0,
    stream: true,
  });
  expect(res.status).toBe(200);
  let done = false;
  for await (const data of sseData(res)) if (data === '[DONE]') done = true;
  expect(done).toBe(true);
  return performance.now() - started;
}

/** Runs `work` while a 5 ms timer watches the event loop; the longest stretch it could not run. */
async function longestHold<T>(work: () => Promise<T>): Promise<{ result: T; holdMs: number }> {
  let last = performance.now();
  let holdMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    holdMs = Math.max(holdMs, now - last);
    last = now;
  }, 5);
  try {
    const result = await work();
    return { result, holdMs: Math.max(holdMs, performance.now() - last) };
  } finally {
    clearInterval(ticker);
  }
}

/** The tokenizer thread's counters (absent where the server tokenizes on its event loop). */
const encoderStats = () => (model as Partial<ServedModel>).encoder?.stats ?? { calls: NaN, bytesTokenized: NaN };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MB = 'lorem ipsum dolor sit amet, '.repeat(Math.ceil((1 << 20) / 28)).slice(0, 1 << 20);

describe('a noisy neighbour', () => {
  it(
    '16 requests with 1 MB prompts: refused before tokenizing, and another stream keeps its pace',
    { timeout: 120_000 },
    async () => {
      await victim(); // warm up
      const alone = median([await victim(), await victim(), await victim()]);
      // the bodies are written before the clock starts: this process is the client too
      const completion = JSON.stringify({ model: 'bigram', prompt: MB, max_tokens: 4 });
      const chat = JSON.stringify({ model: 'bigram', messages: [{ role: 'user', content: MB }], max_tokens: 4 });
      const before = { ...encoderStats() };
      const { result, holdMs } = await longestHold(async () => {
        const noisy = Array.from({ length: 16 }, (_, i) =>
          i % 2 === 0 ? send(backend.url, '/v1/completions', completion) : send(backend.url, '/v1/chat/completions', chat),
        );
        const latency = await victim();
        return { latency, noisy: await Promise.all(noisy) };
      });
      console.log(
        `[noisy neighbour] victim alone ${alone.toFixed(0)} ms, beside 16 × 1 MB prompts ${result.latency.toFixed(0)} ms; longest event-loop hold ${holdMs.toFixed(0)} ms`,
      );
      // tokenizing 1 MB on the event loop takes the better part of a second each: 16 of them held the loop 8.9 s and the
      // stream took 22.6 s on this machine (loaded); the bounds leave room for a loaded machine, not for that.
      // what is left is reading and parsing the bodies, bounded by max_body_bytes
      expect(holdMs).toBeLessThan(2_000);
      expect(result.latency).toBeLessThan(alone * 4 + 6_000);
      for (const res of result.noisy) {
        expect(res.status).toBe(400);
        const err = await errorOf(res);
        expect(err.code).toBe('context_length_exceeded');
        expect(err.message).toMatch(/is 10\d{5} bytes/);
      }
      // the tokenizer thread saw the victim's prompt and the chat renderings it refused, never 1 MB to tokenize
      expect(encoderStats().bytesTokenized - before.bytesTokenized).toBeLessThan(100);
    },
  );

  it('a prompt the byte bound cannot rule out is tokenized on the tokenizer thread and refused by its token count', async () => {
    const perToken = model.tokenizer.maxBytesPerToken!;
    expect(perToken).toBeGreaterThan(0);
    // within 63 × perToken bytes, but one byte a token: over the 63 tokens the context leaves
    const text = 'x'.repeat(Math.min(63 * perToken, 200));
    const before = { ...encoderStats() };
    const res = await send(backend.url, '/v1/completions', { model: 'bigram', prompt: text, max_tokens: 1 });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'context_length_exceeded', param: 'prompt' });
    expect(encoderStats().calls - before.calls).toBe(1);
    expect(encoderStats().bytesTokenized - before.bytesTokenized).toBe(text.length);
  });
});
