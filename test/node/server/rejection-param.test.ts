/**
 * An engine's refusal of a request's own size is a 400 whose `param` names the field to blame, as OpenAI's format
 * wants: the prompt's field (`messages`, `prompt`, `input_ids`) for a prompt that is empty or too long, `max_tokens`
 * for a generation whose KV need is over the budget, and a logits job's input (which alone sets its KV need) — not
 * `max_tokens` for all of them, a field a logits request does not even have.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineRejection } from '../../../gpu-backend/src/engine/engine.ts';
import { rejectionError } from '../../../gpu-backend/src/server/engine-error.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { startBigramBackend } from '../helpers/backend.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

describe('the param of an engine size refusal', () => {
  const refusal = (code: string) => new EngineRejection(`refused: ${code}`, code);

  it.each([
    ['empty_prompt', { prompt: 'messages', budget: 'max_tokens' }, 'messages'],
    ['context_length_exceeded', { prompt: 'messages', budget: 'max_tokens' }, 'messages'],
    ['context_length_exceeded', { prompt: 'prompt', budget: 'max_tokens' }, 'prompt'],
    ['request_too_large', { prompt: 'prompt', budget: 'max_tokens' }, 'max_tokens'],
    ['request_too_large', { prompt: 'input_ids', budget: 'input_ids' }, 'input_ids'],
  ])('%s with %o names %s', (code, fields, param) => {
    const e = rejectionError(refusal(code), fields);
    expect(e.status).toBe(400);
    expect(e.toBody().error).toMatchObject({ type: 'invalid_request_error', param, code });
  });

  it('without the fields it names none rather than guessing', () => {
    for (const code of ['empty_prompt', 'context_length_exceeded', 'request_too_large'])
      expect(rejectionError(refusal(code)).toBody().error.param, code).toBeNull();
  });
});

describe('over the KV budget at the HTTP API', () => {
  let backend: RunningBackend;
  let cycle: number[];
  beforeAll(async () => {
    ({ backend, cycle } = await startBigramBackend('Budget!', { kv_budget_tokens: 8 }));
  }, 120_000);
  afterAll(async () => {
    await backend?.stop();
    cleanupTempDirs();
  });

  it('a logits request names its input', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => cycle[i % cycle.length]!);
    const res = await send(backend.url, '/v1/logits', { model: 'bigram', input_ids: ids });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ param: 'input_ids', code: 'request_too_large' });
  });

  it('a generation names max_tokens', async () => {
    const res = await send(backend.url, '/v1/completions', { model: 'bigram', prompt: 'go', max_tokens: 50 });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ param: 'max_tokens', code: 'request_too_large' });
  });
});
