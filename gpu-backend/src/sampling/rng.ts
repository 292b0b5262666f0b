/**
 * A seeded pseudo-random stream per sequence: xoshiro128** (32-bit state words, period 2^128 − 1) seeded by
 * an integer hash of (seed, stream). The same seed and stream give the same numbers whatever else runs, since
 * every sequence owns its generator.
 */

import { Xoshiro128 } from '../random/xoshiro.ts';

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** A 32-bit integer mixer (xor-shift-multiply finaliser) that spreads every input bit over the output. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The four state words for (seed, stream): the seed's 64 bits and the stream folded through `mix32`. */
function seedState(seed: number, stream: number): [number, number, number, number] {
  const bits = BigInt.asUintN(64, BigInt(Math.trunc(seed)));
  const lo = Number(bits & 0xffffffffn);
  const hi = Number(bits >> 32n);
  let h = mix32(lo ^ 0x9e3779b9);
  h = mix32(h ^ hi);
  h = mix32(h ^ (stream >>> 0));
  const s0 = (h = mix32(h + 0x6a09e667));
  const s1 = (h = mix32(h + 0xbb67ae85));
  const s2 = (h = mix32(h + 0x3c6ef372));
  return [s0, s1, s2, mix32(h + 0xa54ff53a)];
}

/** A fresh non-negative safe-integer seed from the platform's CSPRNG. */
export function randomSeed(): number {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (words[0] & 0x1fffff) * 2 ** 32 + words[1];
}

/** A xoshiro128** generator; `seed` is any integer (OpenAI seeds may be negative or 64-bit), `stream` picks one of many independent streams for that seed (e.g. the choice index when n > 1). */
export class Rng extends Xoshiro128 {
  constructor(
    readonly seed: number,
    readonly stream = 0,
  ) {
    super(seedState(seed, stream));
  }

  /** A generator with a random seed (readable as `.seed`). */
  static random(stream = 0): Rng {
    return new Rng(randomSeed(), stream);
  }

  /** A uniform double in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * TWO_POW_26 + low) / TWO_POW_53;
  }
}
