import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { startTestBackend, TEST_TOKEN } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let backend: RunningBackend;
let client: OpenAI;
const TEXT = '世界🙂ж✓ŋ';
let cycle: number[];

beforeAll(async () => {
  const bigram = bigramModel(TEXT);
  cycle = bigram.cycle;
  backend = await startTestBackend([
    { id: 'inra', mode: 'inra', model: tinyInra(seed), default_lambda: 0.5, lambda_range: [-1, 2] },
    { id: 'bigram', mode: 'single', model: bigram.dir },
  ]);
  client = new OpenAI({ baseURL: `${backend.url}/v1`, apiKey: TEST_TOKEN, maxRetries: 0 });
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

describe(`the backend through the official openai SDK (seed ${seed})`, () => {
  it('chat completion with λ in the extra body; the response says which λ', async () => {
    const res = await client.chat.completions.create({
      model: 'inra',
      messages: [{ role: 'user', content: 'Say something.' }],
      max_tokens: 12,
      temperature: 0,
      // @ts-expect-error realign's field, sent as extra body
      lambda: 1.25,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0].finish_reason).toMatch(/stop|length/);
    expect((res as unknown as { lambda: number }).lambda).toBe(1.25);
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    const raw = await client.chat.completions
      .create({ model: 'inra', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
      .asResponse();
    expect(raw.headers.get('x-realign-lambda')).toBe('0.5'); // the model's default
  });

  it('text completion, n = 2 with a seed, logprobs', async () => {
    const res = await client.completions.create({
      model: 'inra',
      prompt: 'Once upon',
      max_tokens: 6,
      n: 2,
      seed: 7,
      temperature: 1,
      logprobs: 3,
    });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    for (const c of res.choices) {
      expect(c.logprobs!.tokens!.length).toBe(res.usage!.completion_tokens / 2);
      expect(c.logprobs!.token_logprobs!.every((l) => l! <= 0)).toBe(true);
      expect(Object.keys(c.logprobs!.top_logprobs![0]!).length).toBeGreaterThan(0);
    }
    expect(res.choices[0].text).not.toBe(res.choices[1].text === res.choices[0].text ? null : undefined);
  });

  it('streaming chat parses with the SDK, chunks share one id, usage arrives last, multi-byte text is intact', async () => {
    const stream = await client.chat.completions.create({
      model: 'bigram',
      messages: [{ role: 'user', content: 'go' }],
      max_tokens: cycle.length * 2,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const ids = new Set<string>();
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) {
      ids.add(chunk.id);
      expect(chunk.object).toBe('chat.completion.chunk');
      for (const c of chunk.choices) {
        text += c.delta.content ?? '';
        expect(c.delta.content ?? '').not.toContain('\uFFFD');
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(ids.size).toBe(1);
    expect(finish).toBe('length');
    expect(usage!.completion_tokens).toBe(cycle.length * 2);
    expect(text).toBe(TEXT.repeat(2));
    const whole = await client.chat.completions.create({
      model: 'bigram',
      messages: [{ role: 'user', content: 'go' }],
      max_tokens: cycle.length * 2,
      temperature: 0,
    });
    expect(whole.choices[0].message.content).toBe(text);
  });

  it('the raw SSE stream ends with data: [DONE]', async () => {
    const res = await fetch(`${backend.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'inra', prompt: 'abc', max_tokens: 3, stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const body = await res.text();
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('the same request with `control: x` and with `lambda: x` returns the same output', async () => {
    const base = { model: 'inra', prompt: 'The knob', max_tokens: 10, temperature: 0.9, seed: 3 };
    const a = await client.completions.create({ ...base, lambda: 1.5 } as OpenAI.CompletionCreateParamsNonStreaming);
    const b = await client.completions.create({ ...base, control: 1.5 } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(b.choices[0].text).toBe(a.choices[0].text);
    expect((b as unknown as { lambda: number }).lambda).toBe(1.5);
  });

  it('/v1/logits with lambdas [0, 0.5, 1] equals three single-λ calls and costs one forward pass', async () => {
    const post = async (body: unknown) => {
      const r = await fetch(`${backend.url}/v1/logits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(200);
      return (await r.json()) as {
        results: { lambda: number; positions: { top_logprobs: { token_id: number; logprob: number }[] }[] }[];
        branches?: unknown;
      };
    };
    const engine = backend.registry.models().find((m) => m.config.id === 'inra')!.engine;
    const before = (await engine.refreshStats()).forwardPasses;
    const together = await post({
      model: 'inra',
      prompt: 'a b c',
      lambdas: [0, 0.5, 1],
      top_logprobs: 5,
      include_branches: true,
    });
    const after = (await engine.refreshStats()).forwardPasses;
    expect(after - before).toBe(1);
    for (const [k, lambda] of [0, 0.5, 1].entries()) {
      const single = await post({ model: 'inra', prompt: 'a b c', lambdas: [lambda], top_logprobs: 5 });
      const x = together.results[k].positions[0].top_logprobs;
      const y = single.results[0].positions[0].top_logprobs;
      expect(x.map((t) => t.token_id)).toEqual(y.map((t) => t.token_id));
      x.forEach((t, i) => expect(Math.abs(t.logprob - y[i].logprob)).toBeLessThan(1e-5));
    }
    expect(together.branches).toBeDefined();
  });

  it('/v1/models lists the models with their λ ranges', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(['bigram', 'inra']);
  });
});
