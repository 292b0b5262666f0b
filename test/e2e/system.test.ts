/**
 * End to end over real HTTP: two real backends (`realign serve` processes) on a tiny InRa model and the real worker
 * under `wrangler dev` with a local D1, driven with the official openai SDK pointed at the worker.
 */
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, type RunningSystem } from '../../scripts/lib/system.ts';
import { tinyInra } from '../node/helpers/engine.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../node/helpers/models.ts';

const seed = testSeed();
let sys: RunningSystem;
let client: OpenAI;

beforeAll(async () => {
  const model = tinyInra(seed);
  const entry = { id: 'tiny', mode: 'inra', model, default_lambda: 0.5, lambda_range: [-1, 2], device: 'cpu', threads: 1 };
  sys = await startSystem({ stateDir: join(tempDir('realign-e2e-'), 'state'), backends: [{ models: [entry] }, { models: [entry] }], models: [{ id: 'tiny', defaultLambda: 0.5 }] });
  client = new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: sys.apiKey, maxRetries: 0 });
}, 300_000);
afterAll(async () => {
  await sys?.stop();
  cleanupTempDirs();
}, 60_000);

describe(`the whole system (seed ${seed})`, () => {
  it('chat through the worker, non-streamed and streamed, with λ from a preset and explicitly', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0.7, preset: 'deep' } as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse();
    expect(data.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(response.headers.get('x-realign-lambda')).toBe('-0.5');
    expect(response.headers.get('x-realign-preset')).toBe('deep');
    expect((data as unknown as { lambda: number }).lambda).toBe(-0.5);

    const explicit = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, lambda: 1.75 } as OpenAI.ChatCompletionCreateParamsNonStreaming).withResponse();
    expect(explicit.response.headers.get('x-realign-lambda')).toBe('1.75');

    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Stream please' }], max_tokens: 12, stream: true, stream_options: { include_usage: true } });
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(finish).toBe('length');
    expect(usage!.completion_tokens).toBe(12);
  });

  it('a repeated deterministic request is a cache HIT with the same body', async () => {
    const body = { model: 'tiny', messages: [{ role: 'user', content: `cache me ${seed}` }], max_tokens: 6, temperature: 0 } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const first = await client.chat.completions.create(body).withResponse();
    const second = await client.chat.completions.create(body).withResponse();
    expect(first.response.headers.get('x-realign-cache')).toBe('MISS');
    expect(second.response.headers.get('x-realign-cache')).toBe('HIT');
    expect(second.data.choices[0].message.content).toBe(first.data.choices[0].message.content);
    const sampled = await client.chat.completions.create({ ...body, temperature: 1 }).withResponse();
    expect(sampled.response.headers.get('x-realign-cache')).toBe('BYPASS');
  });

  it('a tenant with a tight rate limit gets 429 with rate-limit headers', async () => {
    const tenant = `tight-${seed}`;
    expect((await sys.admin('POST', '/admin/tenants', { id: tenant, name: 'tight', requests_per_minute: 2, tokens_per_minute: 100000 })).status).toBeLessThan(300);
    expect((await sys.admin('PUT', `/admin/tenants/${tenant}/models/tiny`, {})).status).toBeLessThan(300);
    const key = ((await (await sys.admin('POST', `/admin/tenants/${tenant}/keys`, { name: 'k' })).json()) as { key: string }).key;
    const tight = new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: key, maxRetries: 0 });
    const ask = () => tight.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }).withResponse();
    await ask();
    await ask();
    const err = await ask().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (err as InstanceType<typeof OpenAI.RateLimitError>).headers;
    expect(Number(headers.get('retry-after'))).toBeGreaterThan(0);
    expect(headers.get('x-ratelimit-remaining-requests')).toBe('0');
  });

  it('fails over when one of two backends is killed mid-run', async () => {
    const ask = (i: number) => client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: `failover ${i}` }], max_tokens: 4, temperature: 1 }).withResponse();
    for (let i = 0; i < 4; i++) await ask(i);
    await sys.backends[0].stop('SIGKILL');
    // sequentially, so that each request picks a backend by weight afresh: the chance that none of 12 picks the
    // dead one first (and retries) is 2^-12
    const attempts: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await ask(100 + i);
      expect(r.data.choices[0].message.content).toBeDefined();
      attempts.push(Number(r.response.headers.get('x-realign-attempts')));
    }
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  });
});
