/** gpu-check engine: throughput through the engine at several batch sizes. */
import { join } from 'node:path';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import type { EngineStats } from '../../../gpu-backend/src/engine/protocol.ts';
import { samplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { values, device, maxContext, log, save, need, graphCache } from './context.ts';

const bytesOf = (s: EngineStats) => s.hostDeviceBytes.toDevice + s.hostDeviceBytes.fromDevice;

/** Throughput through the engine: B concurrent sequences, even rows greedy and odd rows sampled, λ = 0.5. */
export async function engine(): Promise<void> {
  const dir = need('dir', values.dir);
  const out = need('out', values.out);
  const P = Number(values.prompt);
  const T = Number(values.tokens);
  const batches = values.batches!.split(',').map(Number);
  const vocab = openCheckpoint(join(dir, 'inra')).config.vocabSize;
  const res: Record<string, unknown> = {
    device,
    promptTokens: P,
    newTokens: T,
    lambda: 0.5,
    rows: 'even rows greedy, odd rows temperature 0.8 top_p 0.95 seeded',
  };
  const t0 = performance.now();
  const eng = await Engine.start({
    source: { mode: 'inra', model: join(dir, 'inra') },
    device,
    maxContext,
    graphCache: graphCache(),
    limits: {
      maxBatch: Math.max(...batches),
      maxKvTokens: 1 << 24,
      maxQueue: 1024,
      maxPrefillTokens: Math.max(...batches) * P,
      // unset: the engine's default (decode-loop runs on CUDA when every row is greedy)
      ...(values['decode-loop-steps'] === undefined ? {} : { decodeLoopSteps: Number(values['decode-loop-steps']) }),
    },
  });
  res.startMs = performance.now() - t0;
  res.decodeLoopSteps = values['decode-loop-steps'] ?? 'engine default';
  // captured decode steps (engine/captured-steps.ts): the engine's default, on for CUDA, unless REALIGN_CUDA_GRAPHS says
  res.cudaGraphs = process.env.REALIGN_CUDA_GRAPHS ?? 'auto (on for CUDA)';
  const table: Record<string, unknown>[] = [];
  res.table = table;
  save(out, res);
  // B generations at once; returns when each got its first token and when all ended, plus the stats around them
  const run = async (B: number, maxTokens: number, salt: number) => {
    const before = await eng.refreshStats();
    const start = performance.now();
    const firsts: number[] = [];
    const counts = await Promise.all(
      Array.from({ length: B }, async (_, i) => {
        const gen = eng.generate({
          promptIds: Array.from({ length: P }, (_, j) => (j * 37 + i * 11 + salt * 101) % Math.min(vocab, 1000)),
          lambda: 0.5,
          params: samplingParams(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.8, top_p: 0.95, seed: 1000 + i }),
          maxTokens,
          stop: [],
          stopTokenIds: [],
          ignoreEos: true,
          skipSpecialTokens: true,
          stream: 0,
        });
        let k = 0;
        for await (const ev of gen.events) {
          if (ev.error) throw new Error(`row ${i}: ${ev.error.code}: ${ev.error.message}`);
          if (k === 0 && ev.tokens.length > 0) firsts.push(performance.now());
          k += ev.tokens.length;
        }
        if (k !== maxTokens) throw new Error(`row ${i}: ${k} tokens, asked for ${maxTokens}`);
        return k;
      }),
    );
    const end = performance.now();
    const after = await eng.refreshStats();
    return { start, allFirst: Math.max(...firsts), end, tokens: counts.reduce((a, b) => a + b, 0), before, after };
  };
  await run(2, 4, 0); // warm-up
  for (const B of batches) {
    log(`batch ${B}`);
    try {
      // prefill alone: one new token each (the first token comes from the prefill's logits)
      const p = await run(B, 1, 1);
      const prefillMs = p.end - p.start;
      const prefillBytes = bytesOf(p.after) - bytesOf(p.before);
      const prefillRuns = p.after.hostDeviceBytes.steps - p.before.hostDeviceBytes.steps;
      const d = await run(B, T, 2);
      const decodeMs = d.end - d.allFirst;
      const steps = d.after.decodeSteps - d.before.decodeSteps;
      const decodeRuns = d.after.hostDeviceBytes.steps - d.before.hostDeviceBytes.steps - prefillRuns;
      const decodeBytes = bytesOf(d.after) - bytesOf(d.before) - prefillBytes;
      const row = {
        batch: B,
        prefillMs,
        prefillTokensPerSecond: (B * P * 1000) / prefillMs,
        decodeMs,
        decodeSteps: steps,
        // every row is in every step once all are prefilled: T − 1 steps after the first token
        msPerStep: decodeMs / (T - 1),
        newTokensPerSecond: (B * (T - 1) * 1000) / decodeMs,
        endToEndTokensPerSecond: (d.tokens * 1000) / (d.end - d.start),
        tokens: d.tokens,
        // a decode-loop run holds several steps: bytes per step over the engine's step count, per run beside it
        hostDeviceBytesPerStep: steps > 0 ? decodeBytes / steps : null,
        hostDeviceBytesPerRun: decodeRuns > 0 ? decodeBytes / decodeRuns : null,
        hostDeviceRuns: decodeRuns,
        lastBatchSize: d.after.lastBatchSize,
      };
      table.push(row);
      log(JSON.stringify(row));
    } catch (err) {
      table.push({ batch: B, error: String((err as Error).stack ?? err) });
    }
    save(out, res);
  }
  await eng.shutdown();
  res.finishedMs = performance.now() - t0;
  save(out, res);
}
