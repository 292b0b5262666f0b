/**
 * API details an OpenAI client notices, at the backend: `GET /v1/models/{id}` (what `models.retrieve` calls), 405
 * with `Allow` for a wrong method on any route (parameterised ones included), stream chunks without `usage` unless
 * `include_usage` was asked, what `usage.prompt_tokens` and the per-branch counts mean with `n > 1`, and stop ids
 * outside the vocabulary (which can never be generated) accepted and ignored.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { startTestBackend, TEST_TOKEN } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { errorOf, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let backend: RunningBackend;

beforeAll(async () => {
  backend = await startTestBackend([
    { id: 'inra', mode: 'inra', model: tinyInra(seed), default_lambda: 0.5, lambda_range: [-1, 2] },
  ]);
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

describe(`backend API details (seed ${seed})`, () => {
  it('GET /v1/models/{id} answers the model object; the SDK’s models.retrieve works; an unknown id is a 404', async () => {
    const res = await send(backend.url, '/v1/models/inra');
    expect(res.status).toBe(200);
    const model = (await res.json()) as Record<string, unknown>;
    expect(model).toMatchObject({
      id: 'inra',
      object: 'model',
      owned_by: 'realign',
      realign: { mode: 'inra', default_lambda: 0.5 },
    });
    expect(typeof model.created).toBe('number');
    const listed = (await (await send(backend.url, '/v1/models')).json()) as { data: unknown[] };
    expect(listed.data).toContainEqual(model);
    const client = new OpenAI({ baseURL: `${backend.url}/v1`, apiKey: TEST_TOKEN, maxRetries: 0 });
    expect((await client.models.retrieve('inra')).id).toBe('inra');
    const missing = await send(backend.url, '/v1/models/nope');
    expect(missing.status).toBe(404);
    expect(await errorOf(missing)).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect((await send(backend.url, '/v1/models/inra', undefined, { auth: 'none' })).status).toBe(401);
  });

  it('a wrong method on a route is a 405 with Allow and an OpenAI error body, parameterised routes included', async () => {
    for (const [method, path, allow] of [
      ['GET', '/v1/chat/completions', 'POST'],
      ['DELETE', '/v1/completions', 'POST'],
      ['POST', '/v1/models', 'GET'],
      ['POST', '/v1/models/inra', 'GET'],
      ['DELETE', '/ledger/some-dispatch', 'GET'],
      ['POST', '/healthz', 'GET'],
    ] as const) {
      const res = await send(backend.url, path, method === 'GET' || method === 'DELETE' ? undefined : {}, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(await errorOf(res)).toMatchObject({ type: 'invalid_request_error', code: 'method_not_allowed' });
    }
    const unknown = await send(backend.url, '/v1/nothing-here');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('allow')).toBeNull();
    await unknown.body?.cancel();
  });

  it('stream chunks carry no usage field without include_usage, and usage: null on every chunk but the last with it', async () => {
    const body = { model: 'inra', prompt: 'Once upon', max_tokens: 4, temperature: 0, stream: true };
    const plain: Record<string, unknown>[] = [];
    for await (const d of sseData(await send(backend.url, '/v1/completions', body)))
      if (d !== '[DONE]') plain.push(JSON.parse(d) as Record<string, unknown>);
    expect(plain.length).toBeGreaterThan(0);
    for (const chunk of plain) expect(Object.keys(chunk)).not.toContain('usage');
    const withUsage: Record<string, unknown>[] = [];
    for await (const d of sseData(
      await send(backend.url, '/v1/completions', { ...body, stream_options: { include_usage: true } }),
    ))
      if (d !== '[DONE]') withUsage.push(JSON.parse(d) as Record<string, unknown>);
    for (const chunk of withUsage.slice(0, -1)) expect(chunk.usage).toBeNull();
    expect(withUsage.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
  });

  it('with n = 2, usage.prompt_tokens counts the prompt once; each branch counts the prompt tokens it processed (once per choice)', async () => {
    const one = (await (
      await send(backend.url, '/v1/completions', { model: 'inra', prompt: 'Once upon a time', max_tokens: 3, temperature: 0 })
    ).json()) as { usage: Usage };
    const two = (await (
      await send(backend.url, '/v1/completions', {
        model: 'inra',
        prompt: 'Once upon a time',
        max_tokens: 3,
        temperature: 1,
        seed: 3,
        n: 2,
      })
    ).json()) as { usage: Usage };
    const p = one.usage.prompt_tokens;
    expect(p).toBeGreaterThan(0);
    expect(two.usage.prompt_tokens).toBe(p);
    expect(two.usage.total_tokens).toBe(p + two.usage.completion_tokens);
    expect(one.usage.realign.branches.aligned.prompt_tokens).toBe(p);
    for (const b of ['aligned', 'reference'] as const) {
      expect(two.usage.realign.branches[b].prompt_tokens, b).toBe(2 * p);
      expect(two.usage.realign.branches[b].completion_tokens, b).toBe(two.usage.completion_tokens);
    }
  });

  it('stop_token_ids outside the vocabulary are accepted and ignored (such a token can never be generated)', async () => {
    const body = { model: 'inra', prompt: 'Once upon', max_tokens: 5, temperature: 0 };
    const plain = (await (await send(backend.url, '/v1/completions', body)).json()) as {
      choices: { text: string; finish_reason: string }[];
    };
    const res = await send(backend.url, '/v1/completions', { ...body, stop_token_ids: [151643, 1 << 30] });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
    expect(out.choices[0]).toEqual(
      expect.objectContaining({ text: plain.choices[0]!.text, finish_reason: plain.choices[0]!.finish_reason }),
    );
    const chat = await send(backend.url, '/v1/chat/completions', {
      model: 'inra',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      stop_token_ids: [151643],
    });
    expect(chat.status).toBe(200);
    await chat.body?.cancel();
  });
});

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  realign: { branches: Record<'aligned' | 'reference', { prompt_tokens: number; completion_tokens: number }> };
}
