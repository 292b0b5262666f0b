/**
 * The one xoshiro128** core (Blackman and Vigna; 32-bit state words, period 2^128 − 1) behind every seeded stream:
 * the sampler's per-sequence `Rng` (sampling/rng.ts) and the normal draws of synthetic weights and training data
 * (random/normal.ts). Each seeds the four state words its own way; the step is the same.
 */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Starts from four 32-bit state words; all four zero (the one bad state) becomes s0 = 1. */
  constructor(state: readonly [number, number, number, number]) {
    [this.s0, this.s1, this.s2, this.s3] = state;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
