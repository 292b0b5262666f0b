// the same buckets as drawNucleus's: a decided token is its token
import { BUCKETS, BUCKET_SCALE, NEGLIGIBLE, expWeight } from './draw.ts';

/**
 * Cheaper ways to the token `drawNucleus` and `drawFull` (draw.ts) return for the same row and u — the same token,
 * not just the same distribution (so seeded streams and the device sampler, which follows draw.ts, still agree).
 * draw.ts needs the exact weight w = expWeight(x) of every token, the costly part of a sampled row (a degree-6
 * polynomial per token, then further passes over the weights). Here one pass over the vocabulary computes only an
 * approximate weight per token (a finer table and a degree-2 polynomial, relative error below EPS) and sums it per
 * group — drawNucleus's buckets of x (with a list of each bucket's tokens), or drawFull's blocks of 64 ids; exact
 * weights are computed only inside the groups the draw looks into (for top_p: the bucket where the nucleus ends and
 * the one the draw lands in; for the full softmax: the block it lands in). Every decision draw.ts takes — where the
 * nucleus ends, which group and which token the target falls on — compares sums that are known here to within a
 * bound M of draw.ts's own floating-point values; when a compared difference is within M, the result could differ,
 * and the function returns UNDECIDED so that the caller runs draw.ts itself. A decided token is draw.ts's token.
 *
 * Bound: |w̃ − w| ≤ EPS·w per token (EPS covers the truncated polynomial, 2^-30/6 ≈ 1.55e-10, the table's and the
 * arithmetic's rounding, and expWeight's own 2 ulp; the largest error seen over 3M values of x is 1.553e-10). Any
 * partial sum of non-negative terms computed either way, in any order, is within (EPS + n·2^-53)·S of the exact
 * one (S = the total mass); drawNucleus's running subtraction over ≤ 2048 buckets adds ≤ 2048·2^-53·S. A compared
 * quantity (a residual target, a cumulative mass, the limit) combines a few such sums, so it is off from draw.ts's
 * by less than 4·(EPS + (V + 2048)·2^-53)·S; M is four times that. In the rows the benchmark samples (V = 32000, a
 * nucleus of ~21,000 tokens at T 0.8, top_p 0.9) a token's mass is ~5e-5·S and M ~3.3e-9·S: one draw in 4,000 was
 * left to drawNucleus. The random stream is consumed as before (one u per sampled token, drawn by the caller).
 */

/** The row's draw could come out differently in drawNucleus: run drawNucleus. */
export const UNDECIDED = -1;

/** drawBounded's answer for a raw row none of whose logits is finite (the sampler's NonFiniteLogitsError). */
export const NO_FINITE = -4;

/**
 * One sampled row's draw: its processed logits z (length V: finite values and −∞) and their maximum, or, with
 * `max` NaN, the raw logits of a row without logit_bias and penalties (drawBounded finds the largest finite logit
 * itself, so that this pass runs on the drawing thread too, and treats NaN and ±∞ as the sampler's masking does, as
 * −∞; it only reads z); 1 / temperature, top_p, min_p and the uniform number. top_p < 1: drawNucleus's token;
 * top_p = 1 (then min_p is 0): drawFull's.
 */
export interface DrawJob {
  readonly z: Float32Array;
  readonly max: number;
  readonly invT: number;
  readonly topP: number;
  readonly minP: number;
  readonly u: number;
  /** the row as the model gave it (engine thread only: for the error of a row with no finite logit) */
  readonly source?: Float32Array;
}

/**
 * The job's token as drawNucleus / drawFull would return it, UNDECIDED (then take that draw itself, on a raw row
 * after maskRow) or NO_FINITE. Reads z only: two threads may draw the same row.
 */
export function drawBounded(job: DrawJob): number {
  const { z, invT, topP, minP, u } = job;
  let max = job.max;
  if (max !== max) {
    max = -Infinity;
    for (let i = 0; i < z.length; i++) {
      const v = z[i];
      if (v > max && v < Infinity) max = v; // NaN compares false
    }
    if (max === -Infinity) return NO_FINITE;
  }
  return topP < 1 ? drawNucleusBounded(z, z.length, max, invT, topP, minP, u) : drawFullBounded(z, z.length, max, invT, u);
}

/** Masks NaN and ±∞ to −∞ in place (the sampler's processing of a row without logit_bias and penalties); the maximum. */
export function maskRow(z: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) {
    const v = z[i];
    if (v - v !== 0) z[i] = -Infinity;
    else if (v > max) max = v;
  }
  return max;
}

const FINE_STEPS = 1024;
const FINE_TABLE = Float64Array.from({ length: -NEGLIGIBLE * FINE_STEPS + 1 }, (_, k) => Math.exp(-k / FINE_STEPS));
const EPS = 2e-10;
const ULP = 2 ** -53;

// each bucket's tokens as a list: head[b] the highest id, nextBuf[i] the next lower one (−1 ends it)
let nextBuf = new Int32Array(0);
const head = new Int32Array(BUCKETS);
let idBuf = new Int32Array(0);
let walkBuf = new Int32Array(0);
let weightBuf = new Float64Array(0);
const mass = new Float64Array(BUCKETS);
const cumulative = new Float64Array(BUCKETS);

/**
 * drawNucleus(z, vocab, max, invT, topP, minP, u)'s token, or UNDECIDED (see above; also when min_p binds, which
 * drawNucleus answers from exact weights of the whole vocabulary).
 */
export function drawNucleusBounded(
  z: Float32Array,
  vocab: number,
  max: number,
  invT: number,
  topP: number,
  minP: number,
  u: number,
): number {
  if (nextBuf.length < vocab) {
    nextBuf = new Int32Array(vocab);
    idBuf = new Int32Array(vocab);
    walkBuf = new Int32Array(vocab);
    weightBuf = new Float64Array(vocab);
  }
  const total = approximateMasses(z, vocab, max, invT);
  const margin = 16 * (EPS + (vocab + BUCKETS + 16) * ULP) * total;
  const limit = topP * total;
  // where the nucleus ends: the first bucket whose cumulative mass reaches the limit
  let above = 0;
  let boundary = -1;
  for (let b = 0; b < BUCKETS; b++) {
    cumulative[b] = above;
    if (mass[b] === 0) continue;
    if (above + mass[b] >= limit) {
      if (above + mass[b] - limit <= margin || limit - above <= margin) return UNDECIDED;
      boundary = b;
      break;
    }
    above += mass[b];
  }
  if (boundary < 0) return UNDECIDED; // drawNucleus's rounding case (the total just under the limit)
  const n = rankedBucket(z, max, invT, boundary);
  const w = weightBuf;
  // the ranked tokens kept: while the mass ranked above a token is below the limit
  let kept = 1;
  let keptMass = w[0];
  while (kept < n && above + keptMass < limit) {
    if (limit - (above + keptMass) <= margin) return UNDECIDED;
    keptMass += w[kept++];
  }
  if (kept < n && above + keptMass - limit <= margin) return UNDECIDED;
  if (minP > 0 && w[kept - 1] < minP) return UNDECIDED;

  const target = u * (above + keptMass);
  if (target < above) {
    // the bucket the target falls in: cumulative[b] ≤ target < cumulative[b] + mass[b]
    let b = boundary - 1;
    while (b > 0 && (mass[b] === 0 || cumulative[b] > target)) b--;
    const residual = target - cumulative[b];
    if (residual <= margin || mass[b] - residual <= margin) return UNDECIDED;
    return walkBucket(z, max, invT, b, residual, margin);
  }
  const residual = target - above;
  if (residual <= margin) return UNDECIDED;
  let acc = 0;
  for (let j = 0; j < kept; j++) {
    acc += w[j];
    if (acc > residual) return acc - residual <= margin ? UNDECIDED : idBuf[j];
    if (residual - acc <= margin) return UNDECIDED;
  }
  return UNDECIDED;
}

/**
 * Approximate bucket masses into `mass`, each bucket's tokens into its list (tokens of negligible weight in none), and
 * returns the approximate total. w̃ = table(k/1024)·(1 + r + r²/2), r = x + k/1024 ∈ (−1/1024, 0], k = ⌊−1024x⌋.
 */
function approximateMasses(z: Float32Array, vocab: number, max: number, invT: number): number {
  const next = nextBuf;
  const F = FINE_TABLE;
  mass.fill(0);
  head.fill(-1);
  // y = −x exactly ((z − max)·(−invT) rounds as −((z − max)·invT)), so y < 60 ⟺ x > NEGLIGIBLE and y·BUCKET_SCALE is
  // drawNucleus's −x·BUCKET_SCALE: the same buckets. Written with y, V8 runs this loop ~1.5× faster.
  const negInvT = -invT;
  // imported bindings as locals: read through the module's binding in the loop they made it ~1.3× slower
  const cut = -NEGLIGIBLE;
  const scale = BUCKET_SCALE;
  const last = BUCKETS - 1;
  for (let i = 0; i < vocab; i++) {
    const y = (z[i] - max) * negInvT;
    // y ≥ 0 for every logit up to the maximum; NaN fails both tests and +∞ (a raw row's) gives −∞: both weigh nothing
    if (y < cut && y >= 0) {
      const k = (y * FINE_STEPS) | 0;
      const r = k * (1 / FINE_STEPS) - y;
      let b = (y * scale) | 0;
      if (b > last) b = last;
      next[i] = head[b];
      head[b] = i;
      mass[b] += F[k] * (1 + r * (1 + 0.5 * r));
    }
  }
  let total = 0;
  for (let b = 0; b < BUCKETS; b++) total += mass[b];
  return total;
}

/**
 * The tokens of bucket `b` in rank order (logit descending, ties to the lower id) into `idBuf`, their exact weights
 * (expWeight, as drawNucleus computes them) into `weightBuf`; returns their count.
 */
function rankedBucket(z: Float32Array, max: number, invT: number, b: number): number {
  let n = 0;
  for (let i = head[b]; i >= 0; i = nextBuf[i]) idBuf[n++] = i;
  if (z.length <= ID_SPAN) rankByKey(z, n);
  else idBuf.subarray(0, n).sort((a, c) => z[c] - z[a] || a - c);
  for (let j = 0; j < n; j++) weightBuf[j] = expWeight((z[idBuf[j]] - max) * invT);
  return n;
}

/** Ids up to this many fit beside a float32's 32 bits in a float64 key (2^32 · 2^21 = 2^53). */
const ID_SPAN = 2 ** 21;
let keyBuf = new Float64Array(0);
let bitsOf: { z: Float32Array; bits: Uint32Array } | null = null;

/**
 * Sorts idBuf[0..n) by the comparator above (logit descending, ties to the lower id; the logits are finite) with a
 * numeric sort of keys (order-reversed float32 bits)·2^21 + id: distinct, exact in a float64, and sorted by
 * TypedArray's own sort without a comparator call per comparison. −0 counts as +0, as the comparator's subtraction has it.
 */
function rankByKey(z: Float32Array, n: number): void {
  if (bitsOf?.z !== z) bitsOf = { z, bits: new Uint32Array(z.buffer, z.byteOffset, z.length) };
  const bits = bitsOf.bits;
  if (keyBuf.length < n) keyBuf = new Float64Array(Math.max(n, 1024));
  const keys = keyBuf.subarray(0, n);
  for (let j = 0; j < n; j++) {
    const id = idBuf[j];
    const raw = bits[id] === 0x80000000 ? 0 : bits[id];
    const ordered = raw & 0x80000000 ? ~raw >>> 0 : (raw | 0x80000000) >>> 0; // ascending with the value
    keys[j] = (0xffffffff - ordered) * ID_SPAN + id;
  }
  keys.sort();
  for (let j = 0; j < n; j++) {
    const key = keys[j];
    idBuf[j] = key - Math.floor(key / ID_SPAN) * ID_SPAN; // key % ID_SPAN, exact, without V8's fmod call
  }
}

/** drawInBucket's walk: bucket `b`'s tokens in id order with exact weights, the first whose running mass passes `target`. */
function walkBucket(z: Float32Array, max: number, invT: number, b: number, target: number, margin: number): number {
  let n = 0;
  for (let i = head[b]; i >= 0; i = nextBuf[i]) walkBuf[n++] = i; // highest id first
  let acc = 0;
  for (let j = n - 1; j >= 0; j--) {
    const i = walkBuf[j];
    acc += expWeight((z[i] - max) * invT);
    if (acc > target) return acc - target <= margin ? UNDECIDED : i;
    if (target - acc <= margin) return UNDECIDED;
  }
  return UNDECIDED;
}

/** drawFull's groups: blocks of this many consecutive ids. */
const BLOCK = 64;
let blockMass = new Float64Array(0);

/** drawFull(z, vocab, max, invT, u)'s token (the inverse CDF in id order over the whole softmax), or UNDECIDED. */
export function drawFullBounded(z: Float32Array, vocab: number, max: number, invT: number, u: number): number {
  const blocks = Math.ceil(vocab / BLOCK);
  if (blockMass.length < blocks) blockMass = new Float64Array(blocks);
  const F = FINE_TABLE;
  const negInvT = -invT;
  const cut = -NEGLIGIBLE;
  let total = 0;
  for (let j = 0; j < blocks; j++) {
    const end = Math.min((j + 1) * BLOCK, vocab);
    let m = 0;
    for (let i = j * BLOCK; i < end; i++) {
      const y = (z[i] - max) * negInvT; // −x, as in approximateMasses (and its test for a raw row's NaN and +∞)
      if (y < cut && y >= 0) {
        const k = (y * FINE_STEPS) | 0;
        const r = k * (1 / FINE_STEPS) - y;
        m += F[k] * (1 + r * (1 + 0.5 * r));
      }
    }
    blockMass[j] = m;
    total += m;
  }
  const margin = 16 * (EPS + (vocab + blocks + 16) * ULP) * total;
  const target = u * total;
  // the block the target falls in, then drawFull's running sum inside it with exact weights
  let before = 0;
  let j = 0;
  while (j < blocks && before + blockMass[j] <= target) before += blockMass[j++];
  if (j === blocks || target - before <= margin || before + blockMass[j] - target <= margin) return UNDECIDED;
  let acc = before;
  const end = Math.min((j + 1) * BLOCK, vocab);
  for (let i = j * BLOCK; i < end; i++) {
    const x = (z[i] - max) * invT;
    if (!(x > NEGLIGIBLE) || x > 0) continue; // x > 0: a raw row's +∞
    acc += expWeight(x);
    if (acc > target) return acc - target <= margin ? UNDECIDED : i;
    if (target - acc <= margin) return UNDECIDED;
  }
  return UNDECIDED;
}
