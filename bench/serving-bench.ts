/**
 * Comparison e: serving through the backend alone and through the worker, with a bounded load generator (undici,
 * loopback only) at concurrency 1, 8 and 32: tokens/s, latency p50/p99, time to first token; the worker's added
 * latency and the latency of a cache hit, each measured in turn with its baseline.
 */
import { Agent, request } from 'undici';
import { interleaved, median, pairedRatio, percentile } from './lib/stats.ts';

/** One load level on one path. */
export interface LoadRow {
  path: 'backend' | 'edge';
  concurrency: number;
  requests: number;
  tokensPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  errors: number;
}

/** Results of e. */
export interface ServingResult {
  rows: LoadRow[];
  edgeOverheadMsP50: number;
  edgeLatencyRatio: number;
  cacheHitMsP50: number;
  cacheMissMsP50: number;
}

interface Target {
  url: string;
  key: string;
}

/** One streamed chat request; returns latency, TTFT and completion tokens. */
async function streamed(
  agent: Agent,
  t: Target,
  model: string,
  i: number,
  maxTokens: number,
): Promise<{ ms: number; ttft: number; tokens: number; ok: boolean }> {
  const t0 = performance.now();
  const res = await request(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json', 'cache-control': 'no-cache' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: `Request ${i}: tell me a story.` }],
      max_tokens: maxTokens,
      temperature: 0.8,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
      lambda: 0.5,
    }),
  });
  let ttft = 0;
  let tokens = 0;
  let buf = '';
  for await (const chunk of res.body) {
    if (!ttft) ttft = performance.now() - t0;
    buf += chunk.toString();
  }
  const m = /"completion_tokens":(\d+)/.exec(buf.slice(buf.lastIndexOf('"usage"')));
  if (m) tokens = Number(m[1]);
  return { ms: performance.now() - t0, ttft, tokens, ok: res.statusCode === 200 && buf.includes('[DONE]') };
}

/** Runs `total` requests with at most `concurrency` in flight. */
async function load(
  t: Target,
  path: LoadRow['path'],
  model: string,
  concurrency: number,
  total: number,
  maxTokens: number,
): Promise<LoadRow> {
  const agent = new Agent({ connections: concurrency, pipelining: 1 });
  const lat: number[] = [];
  const ttft: number[] = [];
  let tokens = 0;
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const r = await streamed(agent, t, model, i, maxTokens).catch(() => ({ ms: 0, ttft: 0, tokens: 0, ok: false }));
        if (!r.ok) errors++;
        else {
          lat.push(r.ms);
          ttft.push(r.ttft);
          tokens += r.tokens;
        }
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  await agent.close();
  return {
    path,
    concurrency,
    requests: total,
    tokensPerSecond: tokens / wall,
    latencyP50Ms: percentile(lat, 50),
    latencyP99Ms: percentile(lat, 99),
    ttftP50Ms: percentile(ttft, 50),
    ttftP99Ms: percentile(ttft, 99),
    errors,
  };
}

/** One small non-streamed request (timing the request path rather than generation). */
async function small(agent: Agent, t: Target, model: string, body: Record<string, unknown>): Promise<void> {
  const res = await request(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, ...body }),
  });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

/** Runs e. */
export async function servingBench(
  backend: Target,
  edge: Target,
  model: string,
  opts: { concurrency: number[]; perLevel: (c: number) => number; maxTokens: number; rounds: number },
  log: (s: string) => void,
): Promise<ServingResult> {
  const rows: LoadRow[] = [];
  for (const c of opts.concurrency) {
    for (const [path, t] of [
      ['backend', backend],
      ['edge', edge],
    ] as const) {
      log(`serving: ${path} at concurrency ${c}`);
      rows.push(await load(t, path, model, c, opts.perLevel(c), opts.maxTokens));
    }
  }
  const agent = new Agent({ connections: 2 });
  // the worker's added latency: the same 1-token request direct and through the edge (cache bypassed), in turn
  let n = 0;
  const over = await interleaved(
    {
      backend: () => small(agent, backend, model, { temperature: 1, seed: ++n, lambda: 0.5 }),
      edge: () => small(agent, edge, model, { temperature: 1, seed: ++n, lambda: 0.5 }),
    },
    opts.rounds,
  );
  // a cache hit: one deterministic request stored once, then served from the cache; against misses of fresh ones
  await small(agent, edge, model, { temperature: 0, lambda: 0.25, user: 'cache-bench' });
  const cache = await interleaved(
    {
      hit: () => small(agent, edge, model, { temperature: 0, lambda: 0.25, user: 'cache-bench' }),
      miss: () => small(agent, edge, model, { temperature: 0, lambda: 0.25, user: `miss-${++n}` }),
    },
    opts.rounds,
  );
  await agent.close();
  return {
    rows,
    edgeOverheadMsP50: median(over.edge.map((x, i) => x - over.backend[i])),
    edgeLatencyRatio: pairedRatio(over.edge, over.backend),
    cacheHitMsP50: median(cache.hit),
    cacheMissMsP50: median(cache.miss),
  };
}
