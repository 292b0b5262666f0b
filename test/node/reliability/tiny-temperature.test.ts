/**
 * Regression from the backend fuzz: a temperature that passes validation (in [0, 2]) but is so small that 1 / T
 * overflows (e.g. 8e-323) weighed the best token 0·∞ = NaN, the draw returned no token, and the engine step
 * failed with a 500 ("Cannot convert undefined to a BigInt"). Such a distribution is one-hot on the argmax: every
 * draw mode must return the argmax, with finite logprobs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { samplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';

const V = 64;

describe('a temperature whose inverse overflows', () => {
  it('draws the argmax in every truncation mode, with finite logprobs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -20, max: 20, noNaN: true }), { minLength: V, maxLength: V }),
        fc.constantFrom(5e-324, 8e-323, 1e-310, 5e-309),
        fc.constantFrom({}, { top_k: 5 }, { top_p: 0.01 }, { top_p: 0.9 }, { min_p: 0.5 }, { top_k: 3, top_p: 0.5, min_p: 0.1 }),
        (row, temperature, truncation) => {
          const logits = Float32Array.from(row);
          let best = 0;
          for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
          const r = new SequenceSampler(
            samplingParams({ temperature, seed: 1, logprobs: true, top_logprobs: 2, ...truncation }),
            [],
          ).next(logits);
          expect(r.token).toBe(best);
          expect(Number.isFinite(r.logprob)).toBe(true);
          for (const t of r.top!) expect(Number.isFinite(t.logprob)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
