/**
 * What operators see: /metrics in the Prometheus text format after real traffic (requests by route and status,
 * tokens per branch, the step latency histogram, queue and KV gauges), and JSON logs that carry request ids but
 * never the prompt's text.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { eventually, send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
const KV_BUDGET = 50_000;
/** text that must never reach the logs */
const MARKER = `SECRET-PROMPT-${seed.toString(36)}-${Math.random().toString(36).slice(2)}`;
const logLines: string[] = [];
let backend: RunningBackend;
let inra: Engine;

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  backend = await startTestBackend(
    [
      {
        id: 'inra',
        mode: 'inra',
        model: tinyInra(seed),
        default_lambda: 0.5,
        lambda_range: [-1, 2],
        kv_budget_tokens: KV_BUDGET,
      },
      { id: 'bigram', mode: 'single', model: bigramModel('Metrics世界🙂ж✓ŋ').dir },
    ],
    {},
    logger,
  );
  inra = backend.registry.models().find((m) => m.config.id === 'inra')!.engine;
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

/** The samples of a metric: labels (as a sorted `k="v"` list) → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(canonicalLabels(m[2] ?? ''), Number(m[3]));
  }
  return out;
}

/** Labels in one order whatever order the exposition printed them in: by name, a histogram's `le` last. */
function canonicalLabels(labels: string): string {
  if (labels === '') return '';
  const parts = labels.match(/[a-zA-Z_]\w*="(?:[^"\\]|\\.)*"/g) ?? [];
  const name = (p: string) => p.slice(0, p.indexOf('='));
  return parts.sort((a, b) => (name(a) === 'le' ? 1 : name(b) === 'le' ? -1 : name(a).localeCompare(name(b)))).join(',');
}

async function scrape(): Promise<string> {
  const res = await send(backend.url, '/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

type Usage = {
  completion_tokens: number;
  prompt_tokens: number;
  realign: { branches: Record<'aligned' | 'reference', { prompt_tokens: number; completion_tokens: number }> };
};

describe(`metrics and logs (seed ${seed})`, () => {
  const usages: Usage[] = [];

  it('traffic: generations on both branches, a stream, and refused requests', async () => {
    const chat = await send(backend.url, '/v1/chat/completions', {
      model: 'inra',
      messages: [{ role: 'user', content: `remember ${MARKER}` }],
      max_tokens: 8,
      lambda: 0.5,
    });
    expect(chat.status).toBe(200);
    usages.push(((await chat.json()) as { usage: Usage }).usage);
    // λ = 1 needs only the aligned branch
    const comp = await send(backend.url, '/v1/completions', {
      model: 'inra',
      prompt: `${MARKER} continues`,
      max_tokens: 6,
      lambda: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const data of sseData(comp))
      if (data !== '[DONE]' && data.includes('"usage":{')) usages.push((JSON.parse(data) as { usage: Usage }).usage);
    expect(usages).toHaveLength(2);
    expect(usages[1].realign.branches.reference).toEqual({ prompt_tokens: 0, completion_tokens: 0 });
    expect((await send(backend.url, '/v1/completions', { model: 'inra', prompt: MARKER, temperature: -1 })).status).toBe(400);
    expect((await send(backend.url, '/v1/completions', { model: 'inra', prompt: MARKER, lambda: MARKER })).status).toBe(400);
    expect((await send(backend.url, '/v1/completions', { model: 'inra', prompt: MARKER }, { auth: 'none' })).status).toBe(401);
    expect((await send(backend.url, '/v1/logits', { model: 'inra', prompt: MARKER, lambdas: [0, 1] })).status).toBe(200);
  });

  it('/metrics counts requests by route and status, and tokens per model and branch', async () => {
    const text = await scrape();
    for (const [name, type] of [
      ['realign_requests_total', 'counter'],
      ['realign_completion_tokens_total', 'counter'],
      ['realign_prompt_tokens_total', 'counter'],
      ['realign_step_seconds', 'histogram'],
      ['realign_queue_depth', 'gauge'],
      ['realign_kv_tokens_used', 'gauge'],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
    const requests = samples(text, 'realign_requests_total');
    expect(requests.get('route="/v1/chat/completions",status="200"')).toBe(1);
    expect(requests.get('route="/v1/completions",status="200"')).toBe(1);
    expect(requests.get('route="/v1/completions",status="400"')).toBe(2);
    expect(requests.get('route="/v1/completions",status="401"')).toBe(1);
    expect(requests.get('route="/v1/logits",status="200"')).toBe(1);

    const completion = samples(text, 'realign_completion_tokens_total');
    const prompt = samples(text, 'realign_prompt_tokens_total');
    for (const branch of ['aligned', 'reference'] as const) {
      const key = `branch="${branch}",model="inra"`;
      expect(completion.get(key)).toBe(usages.reduce((s, u) => s + u.realign.branches[branch].completion_tokens, 0));
      expect(prompt.get(key)).toBe(usages.reduce((s, u) => s + u.realign.branches[branch].prompt_tokens, 0));
    }
    expect(completion.get('branch="aligned",model="inra"')).toBe(usages[0].completion_tokens + usages[1].completion_tokens);
    expect(completion.get('branch="reference",model="inra"')).toBe(usages[0].completion_tokens);
  });

  it('/metrics has a step latency histogram with one observation per forward pass', async () => {
    const text = await scrape();
    const passes = (await inra.refreshStats()).forwardPasses;
    const buckets = [...samples(text, 'realign_step_seconds_bucket')].filter(([k]) => k.startsWith('model="inra",'));
    expect(buckets.length).toBeGreaterThanOrEqual(5);
    expect(buckets.at(-1)![0]).toBe('model="inra",le="+Inf"');
    for (let i = 1; i < buckets.length; i++) expect(buckets[i][1]).toBeGreaterThanOrEqual(buckets[i - 1][1]); // cumulative
    const count = samples(text, 'realign_step_seconds_count').get('model="inra"');
    expect(count).toBe(passes);
    expect(buckets.at(-1)![1]).toBe(count);
    expect(samples(text, 'realign_step_seconds_sum').get('model="inra"')).toBeGreaterThan(0);
  });

  it('/metrics queue and KV gauges follow a running stream and return to zero', async () => {
    const abort = new AbortController();
    const res = await send(
      backend.url,
      '/v1/completions',
      { model: 'bigram', prompt: 'go', max_tokens: 1500, temperature: 0, stream: true },
      { signal: abort.signal },
    );
    const reader = sseData(res);
    for (let i = 0; i < 3; i++) await reader.next();
    const during = await scrape();
    expect(samples(during, 'realign_running_sequences').get('model="bigram"')).toBe(1);
    expect(samples(during, 'realign_kv_tokens_used').get('model="bigram"')).toBeGreaterThan(0);
    expect(samples(during, 'realign_kv_bytes_allocated').get('model="bigram"')).toBeGreaterThan(0);
    expect(samples(during, 'realign_queue_depth').get('model="bigram"')).toBe(0);
    expect(samples(during, 'realign_batch_size').get('model="bigram"')).toBe(1);
    abort.abort();
    const bigram = backend.registry.models().find((m) => m.config.id === 'bigram')!.engine;
    expect(await eventually(async () => (await bigram.refreshStats()).rows === 0, 5000)).toBe(true);
    const after = await scrape();
    for (const gauge of ['realign_running_sequences', 'realign_kv_tokens_used', 'realign_queue_depth'])
      expect(samples(after, gauge).get('model="bigram"')).toBe(0);
    expect(samples(after, 'realign_kv_tokens_budget').get('model="inra"')).toBe(KV_BUDGET);
  });

  it('logs are JSON with request ids and never contain the prompt text', async () => {
    const res = await send(
      backend.url,
      '/v1/chat/completions',
      { model: 'inra', messages: [{ role: 'user', content: MARKER }], max_tokens: 3 },
      { headers: { 'x-request-id': 'trace-42.a' } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-42.a');
    const generated = await send(backend.url, '/v1/completions', { model: 'inra', prompt: MARKER, max_tokens: 3 });
    const id = generated.headers.get('x-request-id')!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const entries = logLines.map((l) => JSON.parse(l) as { msg: string; requestId?: string; status?: number });
    expect(entries.length).toBeGreaterThan(10);
    expect(logLines.filter((l) => l.includes(MARKER))).toEqual([]);
    for (const rid of ['trace-42.a', id]) {
      const mine = entries.filter((e) => e.requestId === rid).map((e) => e.msg);
      expect(mine).toEqual(['generation done', 'request']);
    }
    expect(
      entries.filter((e) => e.msg === 'request').every((e) => typeof e.requestId === 'string' && typeof e.status === 'number'),
    ).toBe(true);
  });
});
