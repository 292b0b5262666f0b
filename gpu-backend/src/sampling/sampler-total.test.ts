/**
 * The sampler is total (issue 13 item 1): for any row of logits — finite, huge (±3.4e38), ±∞, NaN — and any
 * parameters, inside the API's ranges or far outside them (a repetition_penalty of 1e-300 sent a positive logit to
 * +∞, whose weight against the maximum was ∞ − ∞ = NaN, and the draw returned `undefined`), `next()` either
 * returns a token id of the vocabulary whose logit was finite, or throws one of the two per-row errors: the row had
 * no finite logit (NonFiniteLogitsError), or — only for parameters outside the API's ranges — SamplingError.
 * Inside the ranges, a row with a finite logit always gives a token.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { samplingParams, type SamplingParams } from './params.ts';
import { FLOAT32_MAX, NonFiniteLogitsError, SamplingError, SequenceSampler } from './sampler.ts';
import { SAMPLING_RULES } from '../../../shared/src/generation-fields.ts';

const V = 48;
const RUNS = 1500;

/** One logit: ordinary, huge, infinite or NaN. */
const logit = fc.oneof(
  { arbitrary: fc.float({ min: -30, max: 30, noNaN: true }), weight: 6 },
  { arbitrary: fc.constantFrom(FLOAT32_MAX, -FLOAT32_MAX, 1e38, -1e38, 65504, -65504, Infinity, -Infinity, NaN), weight: 2 },
  { arbitrary: fc.float({ noNaN: false }), weight: 1 },
);
const nonFinite = fc.constantFrom(Infinity, -Infinity, NaN);
const row = fc
  .oneof(
    { arbitrary: fc.array(logit, { minLength: V, maxLength: V }), weight: 8 },
    { arbitrary: fc.array(nonFinite, { minLength: V, maxLength: V }), weight: 1 },
  )
  .map((a) => Float32Array.from(a));

const within = (rule: { min: number; max: number }, special: number[] = []) =>
  fc.oneof(fc.constantFrom(rule.min, rule.max, ...special), fc.double({ min: rule.min, max: rule.max, noNaN: true }));

/** Parameters the API accepts, extremes included. */
const accepted: fc.Arbitrary<Partial<SamplingParams>> = fc.record(
  {
    temperature: within(SAMPLING_RULES.temperature, [5e-324, 1e-300, 1e-6]),
    top_p: fc.oneof(fc.constantFrom(1, 5e-324, 1e-9), fc.double({ min: 5e-324, max: 1, noNaN: true })),
    top_k: fc.oneof(fc.constantFrom(-1, 0, 1, 2, V - 1, V, V + 1, 2 ** 31)),
    min_p: within(SAMPLING_RULES.min_p, [1 - 1e-12, 5e-324]),
    repetition_penalty: within(SAMPLING_RULES.repetition_penalty),
    presence_penalty: within(SAMPLING_RULES.presence_penalty),
    frequency_penalty: within(SAMPLING_RULES.frequency_penalty),
    logit_bias: fc.dictionary(
      fc.integer({ min: 0, max: V + 4 }).map(String),
      fc.oneof(fc.constantFrom(-100, 100), fc.double({ min: -100, max: 100, noNaN: true })),
    ),
    seed: fc.integer(),
    logprobs: fc.boolean(),
    top_logprobs: fc.integer({ min: 0, max: 20 }),
  },
  { requiredKeys: ['seed'] },
);

/** Parameters far outside the API's ranges (what validation keeps out, if it ever let it through). */
const beyond: fc.Arbitrary<Partial<SamplingParams>> = fc.record(
  {
    temperature: fc.constantFrom(0, 1, 1e-300, 1e300, Infinity, NaN, -1),
    top_p: fc.constantFrom(1, 0.5, 1e-300, 0, 2, NaN),
    top_k: fc.constantFrom(0, 1, 3, -5),
    min_p: fc.constantFrom(0, 0.9, 1, 2, NaN),
    repetition_penalty: fc.constantFrom(1e-300, 1e300, 0, -1, NaN, Infinity),
    presence_penalty: fc.constantFrom(-1e300, 1e300, Infinity, NaN),
    frequency_penalty: fc.constantFrom(-1e300, 1e300),
    logit_bias: fc.dictionary(
      fc.integer({ min: 0, max: V }).map(String),
      fc.constantFrom(1e300, -1e300, Infinity, -Infinity, NaN),
    ),
    seed: fc.integer(),
    logprobs: fc.boolean(),
    top_logprobs: fc.integer({ min: 0, max: 5 }),
  },
  { requiredKeys: ['seed'] },
);

type Tally = Record<'token' | 'non-finite' | 'sampling', number>;

/** Runs one sampler over the rows in turn (penalties grow with the tokens it takes); checks and counts each outcome. */
function check(params: Partial<SamplingParams>, prompt: number[], rows: Float32Array[], inRange: boolean, tally: Tally): void {
  const s = new SequenceSampler(samplingParams(params), prompt);
  for (const logits of rows) {
    const anyFinite = logits.some((x) => Number.isFinite(x));
    try {
      const r = s.next(logits);
      expect(Number.isInteger(r.token) && r.token >= 0 && r.token < V).toBe(true);
      expect(Number.isFinite(logits[r.token])).toBe(true); // never a token whose own logit was NaN or ±∞
      if (r.logprob !== undefined) expect(r.logprob <= 0 && !Number.isNaN(r.logprob)).toBe(true);
      for (const t of r.top ?? [])
        expect(t.logprob <= 0 && !Number.isNaN(t.logprob) && Number.isFinite(logits[t.token])).toBe(true);
      tally.token++;
    } catch (err) {
      if (err instanceof NonFiniteLogitsError) {
        // inside the ranges, only a row without a finite logit has no token
        if (inRange) expect(anyFinite).toBe(false);
        tally['non-finite']++;
      } else if (err instanceof SamplingError) {
        expect(inRange).toBe(false);
        tally.sampling++;
      } else {
        throw err;
      }
    }
  }
}

describe('the sampler is total', () => {
  for (const [name, params, inRange] of [
    ['parameters inside the API ranges', accepted, true],
    ['parameters far outside them', beyond, false],
  ] as const) {
    it(`${name}: a valid token or a per-row error, for any logits`, () => {
      const tally: Tally = { token: 0, 'non-finite': 0, sampling: 0 };
      fc.assert(
        fc.property(
          params,
          fc.array(fc.integer({ min: 0, max: V - 1 }), { maxLength: 24 }),
          fc.array(row, { minLength: 1, maxLength: 4 }),
          (p, prompt, rows) => {
            check(p, prompt, rows, inRange, tally);
          },
        ),
        { numRuns: RUNS },
      );
      console.log(`[property sampler total] ${name}: ${RUNS} cases, rows by outcome ${JSON.stringify(tally)}`);
      expect(tally.token).toBeGreaterThan(RUNS / 2);
      expect(tally['non-finite']).toBeGreaterThan(0);
    });
  }

  it('the overflow of the report: repetition_penalty 1e-300 on a positive logit with min_p 0.9 or top_p 0.5 draws a token', () => {
    const logits = Float32Array.from({ length: V }, (_, i) => (i % 7) - 3);
    for (const extra of [{ min_p: 0.9 }, { top_p: 0.5 }, {}, { top_k: 3 }]) {
      const s = new SequenceSampler(
        samplingParams({ temperature: 1, repetition_penalty: 1e-300, seed: 1, logprobs: true, ...extra }),
        [3, 4, 10],
      );
      for (let step = 0; step < 5; step++) {
        const r = s.next(logits);
        expect(Number.isInteger(r.token) && r.token >= 0 && r.token < V).toBe(true);
        expect(Number.isFinite(r.logprob)).toBe(true);
      }
    }
  });
});
