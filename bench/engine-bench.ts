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
