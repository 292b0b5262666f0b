import { describe, expect, it } from 'vitest';
import { drawFull, drawNucleus } from './draw.ts';
import { drawFullBounded, drawNucleusBounded, UNDECIDED } from './draw-bounded.ts';

/** A small LCG, independent of the sampler's streams. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function maxOf(z: Float32Array): number {
  let m = -Infinity;
  for (const v of z) if (v > m) m = v;
  return m;
}

describe('drawNucleusBounded: drawNucleus’s token from exact weights of two buckets', () => {
  it('returns drawNucleus’s token whenever it decides, over rows with ties, −∞, ±0, wide and narrow nuclei', () => {
    const rand = lcg(7);
    let decided = 0;
    let draws = 0;
    for (let i = 0; i < 6000; i++) {
      const n = 2 + Math.floor(rand() * 400);
      const scale = [0.05, 1, 3, 12, 50][i % 5];
      const z = Float32Array.from({ length: n }, () => {
        const v = (rand() * 2 - 1) * scale;
        if (rand() < 0.02) return -Infinity;
        if (rand() < 0.02) return -0;
        return i % 3 === 0 ? Math.round(v * 4) / 4 : v; // every third row full of ties
      });
      const invT = 1 / [0.05, 0.5, 0.8, 1, 2.5][Math.floor(rand() * 5)];
      const topP = [0.01, 0.3, 0.9, 0.99, 0.999999][Math.floor(rand() * 5)];
      const minP = rand() < 0.3 ? [0.01, 0.3][Math.floor(rand() * 2)] : 0;
      const u = rand() < 0.05 ? [0, 1 - 2 ** -53][Math.floor(rand() * 2)] : rand();
      const max = maxOf(z);
      const got = drawNucleusBounded(z, n, max, invT, topP, minP, u);
      draws++;
      if (got === UNDECIDED) continue;
      decided++;
      expect(got, `row ${i}`).toBe(drawNucleus(z, n, max, invT, topP, minP, u)[0]);
    }
    expect(decided / draws).toBeGreaterThan(0.7); // the comparison is not vacuous
  });

  it('decides nearly every draw of a wide nucleus over a 32,000-token vocabulary, with drawNucleus’s tokens', () => {
    const rand = lcg(11);
    const V = 32000;
    // random-weight logits look like this: ~0.7 standard deviation, a nucleus of ~2/3 of the vocabulary at T = 0.8
    const z = Float32Array.from({ length: V }, () => 0.7 * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
    const max = maxOf(z);
    let decided = 0;
    const tokens = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const u = rand();
      const got = drawNucleusBounded(z, V, max, 1 / 0.8, 0.9, 0, u);
      if (got === UNDECIDED) continue;
      decided++;
      tokens.add(got);
      expect(got).toBe(drawNucleus(z, V, max, 1 / 0.8, 0.9, 0, u)[0]);
    }
    expect(decided).toBeGreaterThanOrEqual(395);
    expect(tokens.size).toBeGreaterThan(300);
  });

  it('leaves a binding min_p to drawNucleus (whose draw then runs over the whole vocabulary)', () => {
    const z = Float32Array.of(5, 4.9, 4.8, 0, -1, -2);
    // the nucleus of 0.999 reaches the low tokens, whose weights are below min_p 0.5: min_p binds
    expect(drawNucleusBounded(z, z.length, 5, 1, 0.999, 0.5, 0.3)).toBe(UNDECIDED);
  });
});

describe('drawFullBounded: drawFull’s token from exact weights of one block of ids', () => {
  it('returns drawFull’s token whenever it decides, over rows with ties, −∞ and −0, small and large vocabularies', () => {
    const rand = lcg(23);
    let decided = 0;
    let draws = 0;
    for (let i = 0; i < 4000; i++) {
      const n = i % 10 === 0 ? 5000 + Math.floor(rand() * 30000) : 1 + Math.floor(rand() * 500);
      const scale = [0.05, 1, 3, 12, 50][i % 5];
      const z = Float32Array.from({ length: n }, () => {
        const v = (rand() * 2 - 1) * scale;
        if (rand() < 0.02) return -Infinity;
        if (rand() < 0.02) return -0;
        return i % 3 === 0 ? Math.round(v * 4) / 4 : v;
      });
      const invT = 1 / [0.05, 0.5, 0.8, 1, 2.5][Math.floor(rand() * 5)];
      const u = rand() < 0.05 ? [0, 1 - 2 ** -53][Math.floor(rand() * 2)] : rand();
      const max = maxOf(z);
      if (max === -Infinity) continue;
      const got = drawFullBounded(z, n, max, invT, u);
      draws++;
      if (got === UNDECIDED) continue;
      decided++;
      expect(got, `row ${i}`).toBe(drawFull(z, n, max, invT, u)[0]);
    }
    expect(decided / draws).toBeGreaterThan(0.9);
  });
});
