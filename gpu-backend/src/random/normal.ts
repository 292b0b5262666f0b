/** Seeded normal random numbers for synthetic checkpoints (fast, reproducible, independent per tensor). */

import { Xoshiro128 } from './xoshiro.ts';

/** 32-bit hash of a string (FNV-1a), to derive a per-tensor stream from one seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Uniform and normal draws from the xoshiro128** core, its state seeded through splitmix32. */
export class NormalStream extends Xoshiro128 {
  private spare: number | null = null;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    const a = next();
    const b = next();
    const c = next();
    super([a, b, c, next() || 1]);
  }

  /** uniform in [0, 1) */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** standard normal (Box–Muller, both values used) */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** `count` values mean + std·N(0,1) from the stream of (seed, name). */
export function randomNormal(seed: number, name: string, count: number, mean: number, std: number): Float32Array {
  const rng = new NormalStream((seed * 0x9e3779b1 + hashString(name)) >>> 0);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + std * rng.normal();
  return out;
}
