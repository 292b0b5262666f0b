import { describe, expect, it } from 'vitest';
import { samplingParams, type SamplingParams } from './params.ts';
import { SequenceSampler } from './sampler.ts';

/** Random logits with a few ties and masked entries, from a small LCG (no dependence on the sampler's stream). */
function rows(count: number, vocab: number, seed: number): Float32Array[] {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from({ length: count }, () => {
    const row = Float32Array.from({ length: vocab }, () => Math.round((next() * 8 - 4) * 4) / 4);
    row[Math.floor(next() * vocab)] = -Infinity;
    return row;
  });
}

const cases: [string, Partial<SamplingParams>][] = [
  ['greedy', { temperature: 0 }],
  ['full softmax', { temperature: 0.8 }],
  ['top_k', { temperature: 1.3, top_k: 7 }],
  ['top_k + top_p + min_p', { temperature: 0.7, top_k: 20, top_p: 0.8, min_p: 0.05 }],
  ['top_p', { temperature: 1, top_p: 0.6 }],
  ['top_p + binding min_p', { temperature: 0.5, top_p: 0.95, min_p: 0.3 }],
  ['min_p', { temperature: 1.1, min_p: 0.1 }],
  [
    'penalties + logit_bias',
    {
      temperature: 0.9,
      repetition_penalty: 1.3,
      presence_penalty: 0.4,
      frequency_penalty: 0.2,
      logit_bias: { 3: 2.5, 10: -100 },
    },
  ],
  ['logprobs', { temperature: 1, logprobs: true, top_logprobs: 5 }],
];

describe('SequenceSampler: handing out the uniform number', () => {
  for (const [name, partial] of cases) {
    it(`${name}: next(logits) equals next(logits, drawUniform()) step for step`, () => {
      const params = samplingParams({ ...partial, seed: 1234 });
      const prompt = [1, 2, 3];
      const a = new SequenceSampler(params, prompt, { stream: 2 });
      const b = new SequenceSampler(params, prompt, { stream: 2 });
      const tokens: number[] = [];
      for (const row of rows(60, 40, 99)) {
        const u = b.drawUniform();
        expect(u === null).toBe(params.temperature === 0);
        const ra = a.next(row);
        const rb = b.next(row, u);
        expect(rb).toEqual(ra);
        tokens.push(ra.token);
      }
      // the draws are not all the same token (the comparison above is not vacuous for sampled rows)
      if (params.temperature > 0) expect(new Set(tokens).size).toBeGreaterThan(1);
    });
  }

  it('record(token) keeps the penalty state as next() would (the device chose the token)', () => {
    const params = samplingParams({
      temperature: 0.9,
      repetition_penalty: 1.5,
      presence_penalty: 0.5,
      frequency_penalty: 0.3,
      seed: 7,
    });
    const a = new SequenceSampler(params, [0]);
    const b = new SequenceSampler(params, [0]);
    for (const [i, row] of rows(40, 30, 5).entries()) {
      const ra = a.next(row);
      if (i % 2 === 0) {
        // the device's turn: b draws its number, the token comes from elsewhere and is only recorded
        b.drawUniform();
        b.record(ra.token);
      } else {
        expect(b.next(row)).toEqual(ra);
      }
    }
  });

  it('a greedy sequence consumes nothing from its stream', () => {
    const greedy = new SequenceSampler(samplingParams({ temperature: 0, seed: 3 }), []);
    for (let i = 0; i < 5; i++) expect(greedy.drawUniform()).toBeNull();
    const tiny = new SequenceSampler(samplingParams({ temperature: 1e-320, seed: 3 }), []);
    expect(tiny.drawUniform()).toBeNull();
  });
});
