import { describe, expect, it } from 'vitest';
import { samplingParams, type SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';
import { analyticDistribution } from './analytic.ts';
import { chiSquareTest } from './chi-square.ts';

/**
 * Empirical vs analytic distributions. Each case draws N tokens from fixed logits with a seeded sampler and
 * runs Pearson's chi-square test at significance ALPHA = 1e-4: a correct sampler would fail a given case
 * with probability 1e-4 (the seeds make each run deterministic). Tokens the definition excludes must never
 * be drawn — that part is exact, not statistical.
 */
const ALPHA = 1e-4;

function draw(logits: Float32Array, params: Partial<SamplingParams>, n: number, seed: number): Float64Array {
  const sampler = new SequenceSampler(samplingParams({ ...params, seed }), []);
  const counts = new Float64Array(logits.length);
  for (let i = 0; i < n; i++) counts[sampler.next(logits).token]++;
  return counts;
}

function checkFit(logits: Float32Array, params: Partial<SamplingParams>, n: number, seed: number): Float64Array {
  const probs = analyticDistribution(logits, samplingParams(params));
  const counts = draw(logits, params, n, seed);
  for (let i = 0; i < probs.length; i++) if (probs[i] === 0) expect(counts[i], `token ${i} is outside the support`).toBe(0);
  const fit = chiSquareTest(counts, probs, ALPHA);
  expect(fit.df).toBeGreaterThan(0);
  expect(
    fit.statistic,
    `chi-square ${fit.statistic.toFixed(2)} on ${fit.df} df (p = ${fit.pValue.toExponential(2)})`,
  ).toBeLessThan(fit.critical);
  return counts;
}

/** Ten logits in scrambled order, so rank order differs from id order. */
const SMALL = new Float32Array([0.3, 2.0, -1.0, 1.2, 0.0, 1.5, -2.0, 0.5, 1.0, -0.5]);

function seededNormals(n: number, scale: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

describe('sampling matches the analytic distribution (chi-square, alpha = 1e-4)', () => {
  it.each<[string, Partial<SamplingParams>]>([
    ['temperature 1', { temperature: 1 }],
    ['temperature 0.6', { temperature: 0.6 }],
    ['temperature 1.5 with top_k 4', { temperature: 1.5, top_k: 4 }],
    ['top_p 0.7', { temperature: 1, top_p: 0.7 }],
    ['min_p 0.2', { temperature: 1, min_p: 0.2 }],
    ['top_k 6, top_p 0.85, min_p 0.1 at temperature 0.8', { temperature: 0.8, top_k: 6, top_p: 0.85, min_p: 0.1 }],
    ['top_k 8 with min_p 0.3 (min_p binds)', { temperature: 1, top_k: 8, min_p: 0.3 }],
    ['top_p 0.9 with min_p 0.05 (nucleus binds) at temperature 1.2', { temperature: 1.2, top_p: 0.9, min_p: 0.05 }],
    ['top_p 0.9 with min_p 0.3 (min_p binds) at temperature 1.2', { temperature: 1.2, top_p: 0.9, min_p: 0.3 }],
  ])('%s over 10 tokens', (_name, params) => {
    checkFit(SMALL, params, 20_000, 1234);
  });

  it.each([
    [0.55, [1, 2, 3]],
    [0.75, [1, 2, 3, 4]],
  ])('top_p %f over tied logits keeps exactly the token that crosses the line, ties to the lower id', (topP, support) => {
    // weights e^-0.5, 1, 1, 1, 1, e^-0.8 (sum 5.056): the ranked mass before ids 1, 2, 3, 4 is 0, 1, 2, 3.
    const logits = new Float32Array([0.5, 1, 1, 1, 1, 0.2]);
    const probs = analyticDistribution(logits, samplingParams({ top_p: topP }));
    expect(Array.from(probs.keys()).filter((i) => probs[i] > 0)).toEqual(support);
    checkFit(logits, { temperature: 1, top_p: topP }, 6000, 9);
    checkFit(logits, { temperature: 1, top_k: 5, top_p: topP * (5.056 / 4.607) }, 6000, 10); // same cut inside top_k
  });

  it('top_p over a 3000-token vocabulary', () => {
    checkFit(seededNormals(3000, 2, 99), { temperature: 1, top_p: 0.9 }, 20_000, 5);
  });

  it('min_p and temperature over a 3000-token vocabulary', () => {
    checkFit(seededNormals(3000, 2, 17), { temperature: 0.7, min_p: 0.02 }, 20_000, 6);
  });

  it('top_k 50 over a 3000-token vocabulary', () => {
    checkFit(seededNormals(3000, 2, 23), { temperature: 1.1, top_k: 50 }, 20_000, 7);
  });

  it('top_p with a long tail of tied tokens keeps exactly the lowest-id ties the nucleus needs', () => {
    // One token at 0 and 4000 tied at −8: the nucleus needs ~1900 of the ties, found only after the
    // candidate threshold has been lowered below them.
    const logits = new Float32Array(4001).fill(-8);
    logits[2500] = 0;
    const probs = analyticDistribution(logits, samplingParams({ top_p: 0.7 }));
    const support = probs.reduce((n, p) => n + (p > 0 ? 1 : 0), 0);
    expect(support).toBeGreaterThan(1500);
    expect(support).toBeLessThan(2500);
    const counts = checkFit(logits, { temperature: 1, top_p: 0.7 }, 5000, 8);
    let lastTie = 0;
    for (let i = 0; i < counts.length; i++) if (counts[i] > 0 && i !== 2500) lastTie = i;
    expect(lastTie).toBeLessThan(support); // never beyond the lowest-id ties in the nucleus
    expect(lastTie).toBeGreaterThan(support * 0.9); // and it does reach near the end of them
  });
});
