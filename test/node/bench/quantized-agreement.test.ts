/**
 * bench/quantized-agreement.ts reads its noise scales as bits of a symmetric round-to-nearest format through
 * rtnErrorRms (float64, any width): at the widths the graphs' quantizer supports it must give that quantizer's own
 * rounding error, and each further bit must halve the error (qmax 2^(bits−1) − 1 about doubles).
 */
import { describe, expect, it } from 'vitest';
import { roundTrip } from '../../../gpu-backend/src/graph/quantize.ts';
import { randomNormal } from '../../../gpu-backend/src/random/normal.ts';
import { rtnErrorRms } from '../../../bench/quantized-agreement.ts';

const seed = (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;

function quantizerError(w: Float32Array, N: number, K: number, bits: 4 | 8, blockSize: number): number {
  const q = roundTrip(w, N, K, bits, blockSize);
  let e2 = 0;
  let w2 = 0;
  for (let i = 0; i < w.length; i++) {
    e2 += (q[i] - w[i]) ** 2;
    w2 += w[i] ** 2;
  }
  return Math.sqrt(e2 / w2);
}

describe(`rtnErrorRms (seed ${seed})`, () => {
  // K = 200: not a multiple of 16 or 32, so the last block of each row is partial
  const N = 24;
  const K = 200;
  const w = randomNormal(seed, 'w', N * K, 0, 0.03);

  it.each([
    [8, 32],
    [8, 16],
    [4, 32],
    [4, 16],
  ] as const)('%i bits, block %i: the graphs quantizer rounding error', (bits, blockSize) => {
    const want = quantizerError(w, N, K, bits, blockSize);
    expect(Math.abs(rtnErrorRms(w, K, bits, blockSize) / want - 1)).toBeLessThan(1e-3);
  });

  it('each further bit halves the error', () => {
    for (let bits = 8; bits < 14; bits++) {
      const r = rtnErrorRms(w, K, bits + 1, 32) / rtnErrorRms(w, K, bits, 32);
      expect(r).toBeGreaterThan(0.45);
      expect(r).toBeLessThan(0.55);
    }
  });
});
