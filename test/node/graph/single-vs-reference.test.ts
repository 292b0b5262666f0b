import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ReferenceModel } from '../../../gpu-backend/src/reference/forward.ts';
import { argmax, decode, openGraph, prefill, randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, testSeed, tinyCheckpoint } from '../helpers/models.ts';

// Tolerance: the float32 ONNX graph against the float64 reference, max-abs error relative to the largest logit.
const TOL = 1e-4;

afterAll(cleanupTempDirs);

const cases = [
  { arch: 'qwen2', tie: false },
  { arch: 'qwen2', tie: true },
  { arch: 'llama', tie: false },
  { arch: 'llama', tie: true },
] as const;

describe.each(cases)('single graph, $arch, tied=$tie', ({ arch, tie }) => {
  const seed = testSeed();

  it(`matches the float64 reference at every position of a batch of prompts, then through 8 cached decode steps (seed ${seed})`, async () => {
    const dir = tinyCheckpoint({ arch, tie, seed });
    const ref = new ReferenceModel(openCheckpoint(dir));
    const g = await openGraph('single', { model: dir });
    // different lengths in one batch exercise right padding; every prompt has ≥ 16 tokens
    const prompts = [randomTokens(19, g.vocab), randomTokens(16, g.vocab), randomTokens(23, g.vocab)];
    const { handles, logits, P } = await prefill(
      g,
      prompts.map((tokens) => ({ tokens, lambdas: [1] })),
      true,
    );
    const V = g.vocab;
    prompts.forEach((tokens, i) => {
      const expected = ref.forward(tokens).logits; // [T, V]
      const got = logits[i][0].subarray(0, tokens.length * V); // positions past the prompt are padding
      expect(P).toBe(23);
      expect(relErr(got, expected)).toBeLessThan(TOL);
    });

    const seqs = prompts.map((p) => [...p]);
    for (let step = 0; step < 8; step++) {
      const next = new Map(
        handles.map((h, i) => [
          h.id,
          { token: argmax(ref.forward(seqs[i]).logits.subarray((seqs[i].length - 1) * V)), lambdas: [1] },
        ]),
      );
      handles.forEach((h, i) => seqs[i].push(next.get(h.id)!.token));
      const out = await decode(g, next, handles);
      seqs.forEach((s, i) => {
        const full = ref.forward(s).logits.subarray((s.length - 1) * V); // recomputed from scratch
        expect(relErr(out[i][0], full)).toBeLessThan(TOL);
      });
    }
  });
});
