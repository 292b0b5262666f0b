import { describe, expect, it } from 'vitest';
import { expWeight } from './draw.ts';
import { Rng } from './rng.ts';

/** Distance in units in the last place between two positive doubles. */
function ulps(a: number, b: number): number {
  const f = new Float64Array([a, b]);
  const i = new BigInt64Array(f.buffer);
  return Math.abs(Number(i[0] - i[1]));
}

describe('the host sampler’s weight exp(x) (table + polynomial, no Math.exp)', () => {
  it('is within 2 ulp of Math.exp over (−60, 0] and exactly 1 at 0 (the best token weighs exactly 1)', () => {
    expect(expWeight(0)).toBe(1);
    expect(expWeight(-0)).toBe(1);
    const rng = new Rng(14, 0);
    let worst = 0;
    // uniform over the range, near 0, and just inside every table step's edges
    for (let n = 0; n < 200_000; n++) {
      const scale = n % 3 === 0 ? 60 : n % 3 === 1 ? 1 : 1e-3;
      const x = -rng.nextFloat() * scale;
      if (x <= -60) continue;
      worst = Math.max(worst, ulps(expWeight(x), Math.exp(x)));
    }
    for (let k = 1; k < 60 * 64; k++) {
      for (const x of [-k / 64, -k / 64 + 2 ** -40, -k / 64 - 2 ** -40]) {
        if (x > -60) worst = Math.max(worst, ulps(expWeight(x), Math.exp(x)));
      }
    }
    expect(worst).toBeLessThanOrEqual(2);
  });
});
