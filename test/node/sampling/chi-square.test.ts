import { describe, expect, it } from 'vitest';
import { chiSquareCritical, chiSquarePValue, chiSquareTest } from './chi-square.ts';

describe('chi-square helper used by the sampling statistics', () => {
  it.each([
    [1, 0.05, 3.8414588207],
    [10, 0.05, 18.3070380533],
    [4, 1e-4, 23.512742445],
    [20, 0.001, 45.3147466181],
    [100, 0.01, 135.806723171],
  ])('critical value for df=%i at alpha=%f is %f (reference values from scipy.stats.chi2.isf)', (df, alpha, value) => {
    expect(Math.abs(chiSquareCritical(df, alpha) / value - 1)).toBeLessThan(1e-8);
    expect(Math.abs(chiSquarePValue(value, df) / alpha - 1)).toBeLessThan(1e-8);
  });

  it('accepts counts that match and rejects counts that do not', () => {
    const probs = [0.5, 0.3, 0.2];
    expect(chiSquareTest([5000, 3000, 2000], probs, 1e-4).statistic).toBe(0);
    const bad = chiSquareTest([5300, 2800, 1900], probs, 1e-4);
    expect(bad.statistic).toBeGreaterThan(bad.critical);
  });
});
