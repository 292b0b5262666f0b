/** Engines on tiny checkpoints for tests, and helpers to drive them. */
import { join } from 'node:path';
import { initModel } from '../../../gpu-backend/src/make/init-model.ts';
import { Engine, type Generation } from '../../../gpu-backend/src/engine/engine.ts';
import type { ModelSource } from '../../../gpu-backend/src/engine/model-loader.ts';
import type { EngineLimits, GenerateEvent, GenerateJob } from '../../../gpu-backend/src/engine/protocol.ts';
import { samplingParams, type SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { tempDir } from './models.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';

export const DEFAULT_LIMITS: EngineLimits = { maxBatch: 32, maxKvTokens: 1 << 20, maxQueue: 256, maxPrefillTokens: 1 << 14 };

/** A tiny tokenizer-equipped checkpoint (random weights). */
export function tinyModel(seed: number, arch: 'qwen2' | 'llama' = 'qwen2'): string {
  const dir = join(tempDir(), 'model');
  initModel(dir, { arch, preset: 'tiny', seed, dtype: 'F32' });
  return dir;
}

/** A tiny InRa checkpoint whose adapter changes the output. */
export function tinyInra(seed: number, arch: 'qwen2' | 'llama' = 'qwen2'): string {
  const trained = join(tempDir(), 'inra');
  syntheticInra(tinyModel(seed, arch), trained, seed + 1, 0.08);
  return trained;
}

/** Starts an engine on the CPU with a private graph cache. */
export function startEngine(source: ModelSource, limits: Partial<EngineLimits> = {}): Promise<Engine> {
  return Engine.start({
    source,
    device: 'cpu',
    threads: 1,
    graphCache: join(tempDir(), 'graphs'),
    limits: { ...DEFAULT_LIMITS, ...limits },
  });
}

/** A generation job with defaults: greedy, no stops, EOS ignored. */
export function job(
  promptIds: number[],
  lambda: number,
  maxTokens: number,
  params: Partial<SamplingParams> = {},
  extra: Partial<GenerateJob> = {},
): Omit<GenerateJob, 'id'> {
  return {
    promptIds,
    lambda,
    params: samplingParams({ temperature: 0, ...params }),
    maxTokens,
    stop: [],
    stopTokenIds: [],
    ignoreEos: true,
    skipSpecialTokens: false,
    stream: 0,
    ...extra,
  };
}

/** Everything a generation produced. */
export interface Collected {
  tokens: number[];
  chunks: string[];
  events: GenerateEvent[];
  finish: GenerateEvent['finish'];
}

/** Drains a generation. */
export async function collect(g: Generation, onEvent?: (ev: GenerateEvent, n: number) => void): Promise<Collected> {
  const out: Collected = { tokens: [], chunks: [], events: [], finish: undefined };
  for await (const ev of g.events) {
    out.events.push(ev);
    out.tokens.push(...ev.tokens.map((t) => t.id));
    if (ev.text) out.chunks.push(ev.text);
    onEvent?.(ev, out.events.length);
    if (ev.finish) out.finish = ev.finish;
  }
  return out;
}
