/**
 * A seeded pseudo-random stream per sequence: xoshiro128** (32-bit state words, period 2^128 − 1) seeded by
 * an integer hash of (seed, stream). The same seed and stream give the same numbers whatever else runs, since
 * every sequence owns its generator.
 */

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** A 32-bit integer mixer (xor-shift-multiply finaliser) that spreads every input bit over the output. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A fresh non-negative safe-integer seed from the platform's CSPRNG. */
export function randomSeed(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (words[0] & 0x1fffff) * 2 ** 32 + words[1];
}

/** A xoshiro128** generator; `seed` is any integer (OpenAI seeds may be negative or 64-bit), `stream` picks one of many independent streams for that seed (e.g. the choice index when n > 1). */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(
    readonly seed: number,
    readonly stream = 0,
  ) {
    const bits = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
    const lo = Number(bits & 0xffffffffn);
    const hi = Number(bits >> 32n);
    let h = mix32(lo ^ 0x9e3779b9);
    h = mix32(h ^ hi);
    h = mix32(h ^ (stream >>> 0));
    this.s0 = h = mix32(h + 0x6a09e667);
    this.s1 = h = mix32(h + 0xbb67ae85);
    this.s2 = h = mix32(h + 0x3c6ef372);
    this.s3 = mix32(h + 0xa54ff53a);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator with a random seed (readable as `.seed`). */
  static random(stream = 0): Rng {
    return new Rng(randomSeed(), stream);
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

  /** A uniform double in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * TWO_POW_26 + low) / TWO_POW_53;
  }
}
