/**
 * Evaluates a model on held-out problems through the serving runtime (the Engine worker, continuous batching,
 * per-request λ): every problem is asked once per λ with sampling, and each completion's length in tokens and
 * correctness are recorded.
 */
import { Engine } from '../../gpu-backend/src/engine/engine.ts';
import type { ModelSource } from '../../gpu-backend/src/engine/model-loader.ts';
import { samplingParams } from '../../gpu-backend/src/sampling/params.ts';
import { TextTokenizer } from '../../gpu-backend/src/text/tokenizer.ts';
import { join } from 'node:path';
import { parseAnswer, promptOf, type Problem } from './task.ts';

/** Mean completion length and accuracy at one λ. */
export interface EvalPoint {
  lambda: number;
  mean_tokens: number;
  accuracy: number;
}

/** Sampling used for every evaluation. */
export const EVAL_SAMPLING = { temperature: 0.7, maxTokens: 200 };

/**
 * One sampled answer of the toy model to problem `p` (the evaluation's sampling: temperature 0.7, at most 200 tokens,
 * seeded per problem): its text and its token count. `mix` names adapters of a model of several.
 */
export async function answerOnce(
  engine: Engine,
  tok: TextTokenizer,
  p: Problem,
  opts: { lambda: number; seed: number; mix?: Record<string, number> },
): Promise<{ text: string; tokens: number }> {
  const gen = engine.generate({
    promptIds: tok.encodeChat([{ role: 'user', content: promptOf(p) }]),
    lambda: opts.lambda,
    ...(opts.mix ? { mix: opts.mix } : {}),
    params: samplingParams({ temperature: EVAL_SAMPLING.temperature, seed: opts.seed }),
    maxTokens: EVAL_SAMPLING.maxTokens,
    stop: [],
    stopTokenIds: [],
    ignoreEos: false,
    skipSpecialTokens: true,
    stream: 0,
  });
  let text = '';
  let tokens = 0;
  for await (const ev of gen.events) {
    text += ev.text;
    tokens += ev.tokens.length;
  }
  return { text, tokens };
}

/** Runs `problems` × `lambdas` through an engine serving `source` (tokenizer read from `tokenizerDir`). */
export async function evaluate(
  source: ModelSource,
  tokenizerDir: string,
  problems: readonly Problem[],
  lambdas: readonly number[],
  seed: number,
  graphCache: string,
): Promise<EvalPoint[]> {
  const tok = TextTokenizer.load(join(tokenizerDir, 'tokenizer.json'), join(tokenizerDir, 'tokenizer_config.json'));
  const engine = await Engine.start({
    source,
    device: 'cpu',
    graphCache,
    maxContext: 256,
    limits: { maxBatch: 64, maxKvTokens: 1 << 22, maxQueue: 100_000, maxPrefillTokens: 1 << 14 },
  });
  try {
    const points: EvalPoint[] = [];
    for (const lambda of lambdas) {
      const runs = problems.map(async (p, i) => {
        const { text, tokens } = await answerOnce(engine, tok, p, { lambda, seed: seed * 100_003 + i });
        return { tokens, correct: parseAnswer(text) === p.a + p.b };
      });
      const done = await Promise.all(runs);
      points.push({
        lambda,
        mean_tokens: done.reduce((s, r) => s + r.tokens, 0) / done.length,
        accuracy: done.filter((r) => r.correct).length / done.length,
      });
    }
    return points;
  } finally {
    await engine.shutdown();
  }
}

/** Greedy completions of one prompt at several λ (for the README). */
export async function completions(
  source: ModelSource,
  tokenizerDir: string,
  prompt: string,
  lambdas: readonly number[],
  graphCache: string,
): Promise<{ lambda: number; text: string }[]> {
  const tok = TextTokenizer.load(join(tokenizerDir, 'tokenizer.json'), join(tokenizerDir, 'tokenizer_config.json'));
  const engine = await Engine.start({
    source,
    device: 'cpu',
    graphCache,
    maxContext: 256,
    limits: { maxBatch: 16, maxKvTokens: 1 << 20, maxQueue: 100, maxPrefillTokens: 1 << 12 },
  });
  try {
    return await Promise.all(
      lambdas.map(async (lambda) => {
        const gen = engine.generate({
          promptIds: tok.encodeChat([{ role: 'user', content: prompt }]),
          lambda,
          params: samplingParams({ temperature: 0 }),
          maxTokens: EVAL_SAMPLING.maxTokens,
          stop: [],
          stopTokenIds: [],
          ignoreEos: false,
          skipSpecialTokens: true,
          stream: 0,
        });
        let text = '';
        for await (const ev of gen.events) text += ev.text;
        return { lambda, text };
      }),
    );
  } finally {
    await engine.shutdown();
  }
}
