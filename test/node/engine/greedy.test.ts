import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { writeTinyTokenizer } from '../../../gpu-backend/src/make/tiny-tokenizer.ts';
import type { Engine } from '../../../gpu-backend/src/engine/engine.ts';
import { collect, job, startEngine, tinyInra, tinyModel } from '../helpers/engine.ts';
import { randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

/**
 * Checks a greedy generation against the float64 reference, recomputed from scratch at every step on the engine's
 * own prefix. A token may differ from the reference argmax only on a tie within float32 noise: the reference
 * logit gap between the two must then be below 1e-4 of the largest logit (the tolerance of the graph tests).
 */
function expectGreedy(prompt: number[], generated: number[], logitsAt: (ids: number[]) => Float64Array): void {
  const ids = [...prompt];
  for (const tok of generated) {
    const z = logitsAt(ids);
    let best = 0;
    let scale = 0;
    for (let i = 0; i < z.length; i++) {
      if (z[i] > z[best]) best = i;
      scale = Math.max(scale, Math.abs(z[i]));
    }
    if (tok !== best) expect(z[best] - z[tok]).toBeLessThan(1e-4 * scale);
    ids.push(tok);
  }
}

const LAMBDAS = [-0.5, 0, 0.5, 1, 1.5];
const seed = testSeed();

describe(`greedy generation equals step-by-step argmax of the reference forward pass (seed ${seed})`, () => {
  it('InRa, 32 tokens, λ ∈ {−0.5, 0, 0.5, 1, 1.5}, all in one batch', async () => {
    const dir = tinyInra(seed);
    const ref = new ReferenceModel(openCheckpoint(dir));
    const engine = await startEngine({ mode: 'inra', model: dir });
    try {
      const V = engine.info.vocabSize;
      const prompts = LAMBDAS.map((_, i) => randomTokens(5 + 3 * i, V));
      const runs = await Promise.all(LAMBDAS.map((l, i) => collect(engine.generate(job(prompts[i], l, 32)))));
      runs.forEach((r, i) => {
        expect(r.tokens).toHaveLength(32);
        expect(r.finish).toBe('length');
        expectGreedy(prompts[i], r.tokens, (ids) => {
          const a = ref.forward(ids).logits.subarray((ids.length - 1) * V);
          const b = ref.forward(ids, 1).logits.subarray((ids.length - 1) * V);
          return blend(a, b, LAMBDAS[i]);
        });
      });
    } finally {
      await engine.shutdown();
    }
  });

  it('fusion, 32 tokens, λ ∈ {−0.5, 0, 0.5, 1, 1.5}, all in one batch', async () => {
    const a = tinyModel(seed, 'llama');
    const r = tinyModel(seed + 5, 'llama');
    const refA = new ReferenceModel(openCheckpoint(a));
    const refR = new ReferenceModel(openCheckpoint(r));
    const engine = await startEngine({ mode: 'fusion', aligned: a, reference: r });
    try {
      const V = engine.info.vocabSize;
      const prompts = LAMBDAS.map((_, i) => randomTokens(12 - 2 * i, V));
      const runs = await Promise.all(LAMBDAS.map((l, i) => collect(engine.generate(job(prompts[i], l, 32)))));
      runs.forEach((run, i) => {
        expect(run.tokens).toHaveLength(32);
        expectGreedy(prompts[i], run.tokens, (ids) =>
          blend(
            refA.forward(ids).logits.subarray((ids.length - 1) * V),
            refR.forward(ids).logits.subarray((ids.length - 1) * V),
            LAMBDAS[i],
          ),
        );
      });
    } finally {
      await engine.shutdown();
    }
  });
});

describe('the Hugging Face greedy sequences at λ = 0.5', () => {
  const ROOT = join(import.meta.dirname, '../../fixtures/hf');
  /** A copy of a fixture checkpoint with a byte-level tokenizer added (the engine serves text; the fixtures carry none). */
  const withTokenizer = (src: string): string => {
    const dir = join(tempDir(), 'ckpt');
    cpSync(src, dir, { recursive: true });
    writeTinyTokenizer(dir, { vocabSize: 384 });
    return dir;
  };
  it.each(['qwen2-tiny', 'qwen2-tiny-tied', 'llama-tiny-rope3'])(
    '%s: inra-trained as InRa, and base + inra-trained as fusion',
    async (name) => {
      const dir = join(ROOT, name);
      const meta = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
        greedy_lambda: number;
        greedy_steps: number;
      };
      const ref = TensorStore.openFile(join(dir, 'reference.safetensors'));
      const prompt = ref.readInt64('input_ids');
      const want = ref.readInt64(`greedy_lambda_${meta.greedy_lambda}`);
      const engines: Engine[] = [
        await startEngine({ mode: 'inra', model: withTokenizer(join(dir, 'inra-trained')), inraAdapterLayers: 1 }),
        await startEngine({
          mode: 'fusion',
          aligned: withTokenizer(join(dir, 'inra-trained')),
          reference: withTokenizer(join(dir, 'base')),
        }),
      ];
      try {
        for (const engine of engines) {
          const out = await collect(engine.generate(job(prompt, meta.greedy_lambda, meta.greedy_steps)));
          expect(out.tokens).toEqual(want);
        }
      } finally {
        await Promise.all(engines.map((e) => e.shutdown()));
      }
    },
  );
});
