import { describe, expect, it } from 'vitest';
import { Rng } from '../../../gpu-backend/src/sampling/rng.ts';
import { chiSquareTest } from './chi-square.ts';

describe('Rng (xoshiro128**)', () => {
  it('is uniform on [0, 1): chi-square over 100 bins, alpha = 1e-4', () => {
    const rng = new Rng(42);
    const counts = new Float64Array(100);
    let outside = 0;
    for (let i = 0; i < 200_000; i++) {
      const u = rng.nextFloat();
      if (!(u >= 0 && u < 1)) outside++;
      else counts[Math.floor(u * 100)]++;
    }
    expect(outside).toBe(0);
    const fit = chiSquareTest(counts, new Float64Array(100).fill(0.01), 1e-4);
    expect(fit.statistic).toBeLessThan(fit.critical);
  });

  it('gives the same numbers for the same seed and stream, different ones otherwise', () => {
    const take = (r: Rng) => Array.from({ length: 8 }, () => r.nextUint32());
    expect(take(new Rng(7))).toEqual(take(new Rng(7)));
    expect(take(new Rng(7, 1))).not.toEqual(take(new Rng(7)));
    expect(take(new Rng(8))).not.toEqual(take(new Rng(7)));
    // Seeds that differ only above 32 bits, or in sign, are different seeds.
    expect(take(new Rng(2 ** 40 + 7))).not.toEqual(take(new Rng(7)));
    expect(take(new Rng(-7))).not.toEqual(take(new Rng(7)));
  });

  it('draws a random seed when asked', () => {
    const a = Rng.random();
    const b = Rng.random();
    expect(Number.isSafeInteger(a.seed) && a.seed >= 0).toBe(true);
    expect(a.seed).not.toBe(b.seed);
  });
});
