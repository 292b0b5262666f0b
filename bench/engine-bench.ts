/** Engine throughput: B concurrent greedy generations through the real engine (worker thread), tokens/s. */
import { Engine } from '../gpu-backend/src/engine/engine.ts';
import { samplingParams } from '../gpu-backend/src/sampling/params.ts';
import { join } from 'node:path';
import { BENCH_ROOT } from './lib/models.ts';

/** One batch size. */
export interface EngineRow {
  preset: string;
  batch: number;
  lambda: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  decodeSteps: number;
}

/** Runs B = each of `batches` sequences of `maxTokens` new tokens at once, after a warm-up. */
export async function engineBench(
  preset: string,
  inraDir: string,
  batches: number[],
  maxTokens: number,
  opts: { device?: 'cpu' | 'cuda'; decodeLoopSteps?: number; graphCache?: string; promptTokens?: number } = {},
): Promise<EngineRow[]> {
  const engine = await Engine.start({
    source: { mode: 'inra', model: inraDir },
    device: opts.device ?? 'cpu',
    graphCache: opts.graphCache ?? join(BENCH_ROOT, 'graphs'),
    limits: {
      maxBatch: 64,
      maxKvTokens: 1 << 22,
      maxQueue: 256,
      maxPrefillTokens: 1 << 16,
      decodeLoopSteps: opts.decodeLoopSteps ?? 0,
    },
  });
  const rows: EngineRow[] = [];
  const once = async (B: number, n: number) => {
    const before = (await engine.refreshStats()).decodeSteps;
    const t0 = performance.now();
    const counts = await Promise.all(
      Array.from({ length: B }, async (_, i) => {
        let k = 0;
        const gen = engine.generate({
          promptIds: Array.from({ length: opts.promptTokens ?? 16 }, (_, j) => (j * 37 + i * 11) % 1000),
          lambda: 0.5,
          params: samplingParams({ temperature: 0 }),
          maxTokens: n,
          stop: [],
          stopTokenIds: [],
          ignoreEos: true,
          skipSpecialTokens: true,
          stream: 0,
        });
        for await (const ev of gen.events) k += ev.tokens.length;
        return k;
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const tokens = counts.reduce((a, b) => a + b, 0);
    return { tokens, seconds, steps: (await engine.refreshStats()).decodeSteps - before };
  };
  await once(2, 8);
  for (const B of batches) {
    const r = await once(B, maxTokens);
    rows.push({
      preset,
      batch: B,
      lambda: 0.5,
      tokens: r.tokens,
      seconds: r.seconds,
      tokensPerSecond: r.tokens / r.seconds,
      decodeSteps: r.steps,
    });
  }
  await engine.shutdown();
  return rows;
}

/** One prefill setting of `prefillInterferenceBench`. */
export interface PrefillInterferenceRow {
  /** EngineLimits.prefillChunkTokens (0: whole prompts) */
  chunkTokens: number;
  /** median over rounds of the longest gap between two tokens of a running stream while the long prompt prefilled */
  maxGapMs: number;
  /** median gap between a running stream's tokens in that window */
  medianGapMs: number;
  /** median gap of the same streams with no prompt being prefilled (the plain decode step) */
  baselineGapMs: number;
  /** median time from submitting the long prompt to its first token */
  ttftMs: number;
  /** median number of tokens each running stream got while the long prompt prefilled */
  streamTokensDuring: number;
  rounds: number;
}

/** Inter-token latency of running streams while a long prompt is admitted, chunked prefill against whole prompts. */
export interface PrefillInterferenceResult {
  preset: string;
  promptTokens: number;
  streams: number;
  rows: PrefillInterferenceRow[];
  /** whole-prompt max gap / chunked max gap (the per-round pairs' median) */
  maxGapRatio: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * `streams` greedy streams (λ = 0.5, 16-token prompts) decode on the CPU engine; then one `promptTokens`-token
 * prompt arrives. Measured on the first stream: the gaps between its tokens from the arrival until the long
 * prompt's first token (and the one after), against its gaps just before. Two engines, one with chunked prefill of
 * `chunkTokens`, one with whole prompts, are run in turn (A B A B …) in the same process.
 */
export async function prefillInterferenceBench(
  preset: string,
  inraDir: string,
  opts: { promptTokens?: number; chunkTokens?: number; streams?: number; rounds?: number; graphCache?: string } = {},
): Promise<PrefillInterferenceResult> {
  const P = opts.promptTokens ?? 2048;
  const C = opts.chunkTokens ?? 128;
  const S = opts.streams ?? 4;
  const rounds = opts.rounds ?? 3;
  const settings = [0, C];
  // one after the other: both load the same graph from the cache
  const engines: Engine[] = [];
  for (const chunk of settings)
    engines.push(
      await Engine.start({
        source: { mode: 'inra', model: inraDir },
        device: 'cpu',
        graphCache: opts.graphCache ?? join(BENCH_ROOT, 'graphs'),
        limits: { maxBatch: 64, maxKvTokens: 1 << 22, maxQueue: 256, maxPrefillTokens: 1 << 16, prefillChunkTokens: chunk },
      }),
    );
  const job = (promptIds: number[], maxTokens: number) => ({
    promptIds,
    lambda: 0.5,
    params: samplingParams({ temperature: 0 }),
    maxTokens,
    stop: [],
    stopTokenIds: [],
    ignoreEos: true,
    skipSpecialTokens: true,
    stream: 0,
  });
  const once = async (engine: Engine, round: number) => {
    const times: number[][] = Array.from({ length: S }, () => []);
    const gens = Array.from({ length: S }, (_, i) =>
      engine.generate(
        job(
          Array.from({ length: 16 }, (_, j) => (j * 37 + i * 11 + round) % 1000),
          100_000,
        ),
      ),
    );
    const drained = gens.map(async (g, i) => {
      for await (const ev of g.events) if (ev.tokens.length > 0) times[i].push(performance.now());
    });
    // the streams run: a few steps of plain decoding first (the baseline)
    while (times.some((t) => t.length < 8)) await new Promise((r) => setTimeout(r, 1));
    const t0 = performance.now();
    const long = engine.generate(
      job(
        Array.from({ length: P }, (_, j) => (j * 53 + round * 7) % 1000),
        1,
      ),
    );
    let first = 0;
    for await (const ev of long.events) if (ev.tokens.length > 0 && first === 0) first = performance.now();
    // one more token of the first stream after the long prompt's first, so the gap that holds it is complete
    const n = times[0].length;
    while (times[0].length <= n) await new Promise((r) => setTimeout(r, 1));
    for (const g of gens) g.cancel();
    await Promise.all(drained);
    const t = times[0];
    const gapsIn = (from: number, to: number) => {
      const out: number[] = [];
      for (let k = 1; k < t.length; k++) if (t[k] > from && t[k - 1] < to) out.push(t[k] - t[k - 1]);
      return out;
    };
    const during = gapsIn(t0, first);
    const before = t.filter((x) => x < t0);
    const baseline = before.slice(1).map((x, k) => x - before[k]);
    return {
      maxGap: Math.max(...during),
      medianGap: median(during),
      baseline: median(baseline.slice(-5)),
      ttft: first - t0,
      streamTokens: times.map((ts) => ts.filter((x) => x > t0 && x <= first).length),
    };
  };
  type Once = Awaited<ReturnType<typeof once>>;
  const results: Once[][] = settings.map(() => []);
  try {
    for (const [k, e] of engines.entries()) await once(e, -1 - k); // warm-up
    for (let r = 0; r < rounds; r++) for (const [k, e] of engines.entries()) results[k].push(await once(e, r));
  } finally {
    await Promise.all(engines.map((e) => e.shutdown()));
  }
  const rows = settings.map((chunkTokens, k) => ({
    chunkTokens,
    maxGapMs: median(results[k].map((x) => x.maxGap)),
    medianGapMs: median(results[k].map((x) => x.medianGap)),
    baselineGapMs: median(results[k].map((x) => x.baseline)),
    ttftMs: median(results[k].map((x) => x.ttft)),
    streamTokensDuring: median(results[k].flatMap((x) => x.streamTokens)),
    rounds,
  }));
  const maxGapRatio = median(results[0].map((x, r) => x.maxGap / results[1][r].maxGap));
  return { preset, promptTokens: P, streams: S, rows, maxGapRatio };
}
