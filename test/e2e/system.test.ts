/**
 * End to end over real HTTP: two real backends (`realign serve` processes) on a tiny InRa model and the real worker
 * under `wrangler dev` with a local D1, driven with the official openai SDK pointed at the worker.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, type RunningSystem } from '../../scripts/lib/system.ts';
import { signRequest } from '../../shared/src/signing.ts';
import { tinyInra } from '../node/helpers/engine.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../node/helpers/models.ts';

const seed = testSeed();
let sys: RunningSystem;
let client: OpenAI;
/** logit_bias that bans the tiny model's end-of-sequence tokens (a stream that must still run when its backend dies) */
let noEos: Record<string, number> = {};

beforeAll(async () => {
  const model = tinyInra(seed);
  const eos = (JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { eos_token_id: number | number[] }).eos_token_id;
  noEos = Object.fromEntries([eos].flat().map((id) => [String(id), -100]));
  const entry = { id: 'tiny', mode: 'inra', model, default_lambda: 0.5, lambda_range: [-1, 2], device: 'cpu', threads: 1 };
  sys = await startSystem({
    stateDir: join(tempDir('realign-e2e-'), 'state'),
    backends: [
      { models: [entry], weight: 1000 },
      { models: [entry], weight: 1 },
    ],
    models: [{ id: 'tiny', defaultLambda: 0.5 }],
  });
  client = new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: sys.apiKey, maxRetries: 0 });
}, 300_000);
afterAll(async () => {
  await sys?.stop();
  cleanupTempDirs();
}, 60_000);

describe(`the whole system (seed ${seed})`, () => {
  it('chat through the worker, non-streamed and streamed, with λ from a preset and explicitly', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 8,
        temperature: 0.7,
        preset: 'deep',
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(data.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(response.headers.get('x-realign-lambda')).toBe('-0.5');
    expect(response.headers.get('x-realign-preset')).toBe('deep');
    expect((data as unknown as { lambda: number }).lambda).toBe(-0.5);

    const explicit = await client.chat.completions
      .create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 4,
        lambda: 1.75,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();
    expect(explicit.response.headers.get('x-realign-lambda')).toBe('1.75');

    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Stream please' }],
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(chunks).toBeGreaterThan(2);
    // a random tiny model may draw its end-of-sequence token early
    expect(['stop', 'length']).toContain(finish);
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    expect(usage!.completion_tokens).toBeLessThanOrEqual(12);
  });

  it('a repeated deterministic request is a cache HIT with the same body', async () => {
    const body = {
      model: 'tiny',
      messages: [{ role: 'user', content: `cache me ${seed}` }],
      max_tokens: 6,
      temperature: 0,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const first = await client.chat.completions.create(body).withResponse();
    const second = await client.chat.completions.create(body).withResponse();
    expect(first.response.headers.get('x-realign-cache')).toBe('MISS');
    expect(second.response.headers.get('x-realign-cache')).toBe('HIT');
    expect(second.data.choices[0].message.content).toBe(first.data.choices[0].message.content);
    const sampled = await client.chat.completions.create({ ...body, temperature: 1 }).withResponse();
    expect(sampled.response.headers.get('x-realign-cache')).toBe('BYPASS');
  });

  it("the catalogue row is seeded from the backends' /v1/models: its context and its default adapter's λ bounds apply", async () => {
    const path = '/v1/models/tiny';
    const served = await fetch(`${sys.backendUrls[0]}${path}`, {
      headers: await signRequest(sys.hmacSecret, { method: 'GET', path, body: '' }),
    });
    const { realign } = (await served.json()) as { realign: { max_context: number; adapters: string[] } };
    const rows = (await (await sys.admin('GET', '/admin/models')).json()) as {
      data: { id: string; context_length: number | null; adapters: string[] | null }[];
    };
    expect(rows.data.find((m) => m.id === 'tiny')).toMatchObject({
      context_length: realign.max_context,
      adapters: realign.adapters,
    });
    // a tenant whose policy bounds the default adapter's λ: a request without `adapter` runs on it, so it is bounded
    const tenant = `bounded-${seed}`;
    expect((await sys.admin('POST', '/admin/tenants', { id: tenant, name: 'bounded' })).status).toBeLessThan(300);
    expect((await sys.admin('PUT', `/admin/tenants/${tenant}/models/tiny`, {})).status).toBeLessThan(300);
    const policy = { adapter_ranges: { [realign.adapters[0]]: { min_lambda: 0, max_lambda: 0.6 } } };
    expect((await sys.admin('PUT', `/admin/tenants/${tenant}/policies/tiny`, policy)).status).toBe(200);
    const key = ((await (await sys.admin('POST', `/admin/tenants/${tenant}/keys`, { name: 'k' })).json()) as { key: string }).key;
    const ask = (body: Record<string, unknown>) =>
      fetch(`${sys.edgeUrl}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'bounded', max_tokens: 2, ...body }),
      });
    expect((await ask({ lambda: 0.5 })).status).toBe(200);
    const above = await ask({ lambda: 0.9 });
    expect(above.status).toBe(400);
    expect(((await above.json()) as { error: { code: string } }).error.code).toBe('lambda_out_of_range');
    // a max_tokens that can never fit the context is refused by the edge itself (its message names the context)
    const tooLong = await ask({ max_tokens: realign.max_context });
    expect(tooLong.status).toBe(400);
    const err = ((await tooLong.json()) as { error: { code: string; message: string } }).error;
    expect(err).toMatchObject({ code: 'context_length_exceeded' });
    expect(err.message).toContain(`has a context of ${realign.max_context} tokens`);
  });

  it('a tenant with a tight rate limit gets 429 with rate-limit headers', async () => {
    const tenant = `tight-${seed}`;
    expect(
      (
        await sys.admin('POST', '/admin/tenants', {
          id: tenant,
          name: 'tight',
          requests_per_minute: 2,
          tokens_per_minute: 100000,
        })
      ).status,
    ).toBeLessThan(300);
    expect((await sys.admin('PUT', `/admin/tenants/${tenant}/models/tiny`, {})).status).toBeLessThan(300);
    const key = ((await (await sys.admin('POST', `/admin/tenants/${tenant}/keys`, { name: 'k' })).json()) as { key: string }).key;
    const tight = new OpenAI({ baseURL: `${sys.edgeUrl}/v1`, apiKey: key, maxRetries: 0 });
    const ask = () =>
      tight.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }).withResponse();
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
    // backend 0 has weight 1000 against 1: it takes (nearly) all traffic until it dies
    const ask = (i: number) =>
      client.chat.completions
        .create({ model: 'tiny', messages: [{ role: 'user', content: `failover ${i}` }], max_tokens: 4, temperature: 1 })
        .withResponse();
    for (let i = 0; i < 3; i++) expect((await ask(i)).response.headers.get('x-realign-attempts')).toBe('1');
    // a long stream is running on backend 0 when it is killed: that client gets an error, not a hang (its
    // end-of-sequence tokens banned: a random tiny model may draw one within the first few tokens, and the stream
    // would end before the kill)
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'a long one' }],
      max_tokens: 2000,
      logit_bias: noEos,
      stream: true,
    });
    const reading = (async () => {
      let n = 0;
      for await (const _ of stream) if (++n === 3) await sys.backends[0].stop('SIGKILL');
      return n;
    })();
    await expect(reading).rejects.toThrow();
    const after = [];
    for (let i = 0; i < 6; i++) after.push(await ask(100 + i));
    expect(after.every((r) => r.data.choices[0].message.content !== undefined)).toBe(true);
    // the broken stream marked backend 0 down: later requests go straight to backend 1, with no retry
    expect(after.map((r) => r.response.headers.get('x-realign-attempts'))).toEqual(Array(6).fill('1'));
  });
});
