import { describe, expect, it } from 'vitest';
import { checkLogitsAnswerSize, logitsAnswerBytesEstimate, logitsAnswerEntries, logitsPositionCount } from './logits-bounds.ts';

describe('logits answer bounds', () => {
  it('count positions × (λ + 2 branches) × top_logprobs entries', () => {
    expect(logitsPositionCount('last', 500)).toBe(1);
    expect(logitsPositionCount('all', 500)).toBe(500);
    expect(logitsAnswerEntries({ positions: 500, lambdas: 32, topLogprobs: 100, includeBranches: true })).toBe(500 * 34 * 100);
    expect(logitsAnswerEntries({ positions: 1, lambdas: 3, topLogprobs: 20, includeBranches: false })).toBe(60);
    expect(logitsAnswerBytesEstimate({ positions: 1, lambdas: 3, topLogprobs: 20, includeBranches: false })).toBe(6000);
  });

  it('refuse an answer over the bound with a 400 naming the fields, accept one at it', () => {
    expect(checkLogitsAnswerSize({ positions: 10, lambdas: 2, topLogprobs: 5, includeBranches: false }, 100)).toBeNull();
    const e = checkLogitsAnswerSize({ positions: 10, lambdas: 2, topLogprobs: 5, includeBranches: true }, 100)!;
    expect(e).toMatchObject({ status: 400, param: 'positions', code: 'logits_answer_too_large' });
    for (const field of ['positions', 'lambdas', 'top_logprobs', 'include_branches']) expect(e.message).toContain(field);
    expect(checkLogitsAnswerSize({ positions: 1, lambdas: 32, topLogprobs: 100, includeBranches: false }, 100)).toMatchObject({
      param: 'top_logprobs',
    });
  });
});
