/**
 * Issue 13 item 1 at the backend's HTTP API: `{"min_p":0.9,"repetition_penalty":1e-300}` (and with `top_p < 1`)
 * passed validation, overflowed in the sampler and answered 500 after ending every stream of its batch — and the
 * edge marks a backend down on a 5xx. Now such a request gets a 400 in OpenAI's error format naming the field,
 * before it is queued; ten streams running at the same time finish normally, and the backend stays healthy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { tinyModel } from '../helpers/engine.ts';
import { errorOf, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let backend: RunningBackend;

beforeAll(async () => {
  backend = await startTestBackend([{ id: 'plain', mode: 'single', model: tinyModel(seed), max_context: 256 }]);
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const prompt = 'the quick brown fox jumps over the lazy dog, again and again and again';

/** A streamed completion read to its end: the finish reason of its last chunk and whether [DONE] came. */
async function stream(extra: Record<string, unknown>): Promise<{ status: number; finish: string | null; done: boolean }> {
  const res = await send(backend.url, '/v1/completions', { model: 'plain', prompt, max_tokens: 32, stream: true, ...extra });
  let finish: string | null = null;
  let done = false;
  for await (const data of sseData(res)) {
    if (data === '[DONE]') done = true;
    else {
      const chunk = JSON.parse(data) as { choices?: { finish_reason: string | null }[] };
      finish = chunk.choices?.[0]?.finish_reason ?? finish;
    }
  }
  return { status: res.status, finish, done };
}

describe(`an overflowing repetition_penalty at the HTTP API (seed ${seed})`, () => {
  for (const [name, extra] of [
    ['min_p 0.9', { min_p: 0.9 }],
    ['top_p 0.5', { top_p: 0.5 }],
  ] as const) {
    it(`repetition_penalty 1e-300 with ${name}: 400 naming the field, the ten streams beside it finish, the backend stays up`, async () => {
      const others = Array.from({ length: 10 }, (_, i) => stream({ temperature: i % 2 ? 0.8 : 0, seed: i }));
      // let the streams start decoding before the bad request arrives
      await new Promise((r) => setTimeout(r, 50));
      const bad = await send(backend.url, '/v1/completions', {
        model: 'plain',
        prompt,
        max_tokens: 16,
        temperature: 1,
        repetition_penalty: 1e-300,
        ...extra,
      });
      expect(bad.status).toBe(400);
      const error = await errorOf(bad);
      expect(error.type).toBe('invalid_request_error');
      expect(error.param).toBe('repetition_penalty');
      expect(error.message).toMatch(/repetition_penalty/);

      const results = await Promise.all(others);
      // a random model may write its EOS: `stop` or `length`, never an error
      for (const r of results) expect(r).toEqual({ status: 200, finish: expect.stringMatching(/^(length|stop)$/), done: true });
      expect((await send(backend.url, '/healthz')).status).toBe(200);
      expect((await send(backend.url, '/readyz')).status).toBe(200);
      // the same request at the bound is served
      const ok = await send(backend.url, '/v1/completions', {
        model: 'plain',
        prompt,
        max_tokens: 8,
        temperature: 1,
        repetition_penalty: 0.01,
        ...extra,
      });
      expect(ok.status).toBe(200);
    });
  }
});
