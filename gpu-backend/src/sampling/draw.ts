import { topKIndices } from './select.ts';

/**
 * Truncation and the random draw over one row of processed logits `z [V]`, where `max` is the largest
 * logit and `invT` = 1 / temperature. Weights are w = exp((z − max)·invT), so the best token weighs 1 and
 * min_p is a plain threshold on w. Rank order everywhere: logit descending, ties to the lower id.
 */

/** Terms with exp(x) for x below this are < e^-60 ≈ 9e-27 of the largest (which is 1): even summed over a
 * billion tokens they stay below double precision's 2^-53, so skipping them changes no sum and no draw. */
export const NEGLIGIBLE = -60;
/** Buckets of x = (z − max)·invT over (NEGLIGIBLE, 0] for the top_p search; bucket order is rank order. */
export const BUCKETS = 2048;
export const BUCKET_SCALE = BUCKETS / -NEGLIGIBLE;

/**
 * exp(x) for x in (NEGLIGIBLE, 0], the weights' range, without calling Math.exp (a C call in V8, ~20–50 ns, most of
 * a draw's time at V = 32000): x = −k/64 + r with k = ⌊−64x⌋ and r ∈ (−1/64, 0] exact (Sterbenz), exp(−k/64) from
 * a table made by Math.exp, exp(r) by its Taylor polynomial to r⁶ (truncation < 2^−42/5040 ≈ 0.2 ulp). Within
 * ~2 ulp of exp(x) (Math.exp: < 1 ulp) — relative 4e-16, the size of the libm differences the device sampler already
 * allows for — and exp(0) = 1 exactly, so the best token still weighs exactly 1.
 */
const EXP_STEPS = 64;
const EXP_TABLE = Float64Array.from({ length: -NEGLIGIBLE * EXP_STEPS + 1 }, (_, k) => Math.exp(-k / EXP_STEPS));

const E = EXP_TABLE;
const C3 = 1 / 6;
const C4 = 1 / 24;
const C5 = 1 / 120;
const C6 = 1 / 720;

/**
 * The weight exp(x), x ∈ (NEGLIGIBLE, 0]. The draws' loops below repeat this expression written out: V8 does not
 * reliably inline a call there (then every call boxes its double result, ~5× slower).
 */
export function expWeight(x: number): number {
  const k = (-x * EXP_STEPS) | 0; // −64x ∈ [0, 3840): truncation is floor, exact (a power-of-two scale)
  const r = x + k / EXP_STEPS;
  return E[k] * (1 + r * (1 + r * (0.5 + r * (C3 + r * (C4 + r * (C5 + r * C6))))));
}

// Scratch shared by every sampler on this thread: sampling is synchronous, so one set serves all sequences
// and a step allocates nothing of vocabulary size.
let wBuf = new Float64Array(0);
let idxBuf = new Int32Array(0);
let bucketBuf = new Uint16Array(0);
const bucketMass = new Float64Array(BUCKETS);

function ensureScratch(vocab: number): void {
  if (wBuf.length < vocab) {
    wBuf = new Float64Array(vocab);
    idxBuf = new Int32Array(vocab);
    bucketBuf = new Uint16Array(vocab);
  }
}

/** Σ exp((z − max)·invT) over the row (the softmax normaliser). */
export function softmaxSum(z: Float32Array, vocab: number, max: number, invT: number): number {
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = (z[i] - max) * invT;
    if (x > NEGLIGIBLE) {
      const k = (-x * EXP_STEPS) | 0;
      const r = x + k / EXP_STEPS;
      const wi = E[k] * (1 + r * (1 + r * (0.5 + r * (C3 + r * (C4 + r * (C5 + r * C6))))));
      sum += wi;
    }
  }
  return sum;
}

/** Draws from the whole softmax; returns the token and the normaliser (reused for logprobs). */
export function drawFull(z: Float32Array, vocab: number, max: number, invT: number, u: number): [token: number, sum: number] {
  ensureScratch(vocab);
  const w = wBuf;
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = (z[i] - max) * invT;
    if (x > NEGLIGIBLE) {
      const k = (-x * EXP_STEPS) | 0;
      const r = x + k / EXP_STEPS;
      const wi = E[k] * (1 + r * (1 + r * (0.5 + r * (C3 + r * (C4 + r * (C5 + r * C6))))));
      w[i] = wi;
      sum += wi;
    } else w[i] = 0;
  }
  const target = u * sum;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < vocab; i++) {
    const wi = w[i];
    if (wi > 0) {
      acc += wi;
      last = i;
      if (acc > target) return [i, sum];
    }
  }
  return [last, sum]; // rounding left the target at or past the total
}

/** top_k by partial selection, then top_p and min_p among the k (renormalised over them). */
export function drawTopK(
  z: Float32Array,
  vocab: number,
  max: number,
  invT: number,
  k: number,
  topP: number,
  minP: number,
  u: number,
): number {
  ensureScratch(vocab);
  const idx = idxBuf;
  const w = wBuf;
  const n = topKIndices(z.subarray(0, vocab), k, idx);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += w[j] = Math.exp((z[idx[j]] - max) * invT);
  let kept = n;
  if (topP < 1) {
    // A token stays while the mass ranked above it is below top_p·sum (the one that crosses the line stays).
    const limit = topP * sum;
    let above = w[0];
    kept = 1;
    while (kept < n && above < limit) above += w[kept++];
  }
  if (minP > 0) {
    for (let j = 1; j < kept; j++) {
      if (w[j] < minP) {
        kept = j;
        break;
      }
    }
  }
  let total = 0;
  for (let j = 0; j < kept; j++) total += w[j];
  return drawListed(kept, total, u);
}

/**
 * top_p (with optional min_p) without top_k, without sorting the vocabulary. Weights are summed per bucket
 * of x (bucket order is rank order); the bucket where the running mass crosses top_p·sum is the only one
 * sorted, and the nucleus ends where the crossing happens inside it. The draw then picks a bucket by its
 * mass and a token inside it. Returns the token and the softmax normaliser.
 */
export function drawNucleus(
  z: Float32Array,
  vocab: number,
  max: number,
  invT: number,
  topP: number,
  minP: number,
  u: number,
): [token: number, sum: number] {
  ensureScratch(vocab);
  const w = wBuf;
  const bucket = bucketBuf;
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const x = (z[i] - max) * invT;
    if (x > NEGLIGIBLE) {
      const k = (-x * EXP_STEPS) | 0;
      const r = x + k / EXP_STEPS;
      const wi = E[k] * (1 + r * (1 + r * (0.5 + r * (C3 + r * (C4 + r * (C5 + r * C6))))));
      const b = (-x * BUCKET_SCALE) | 0; // ⌊−x·2048/60⌋ (≥ 0), at most the last bucket
      w[i] = wi;
      bucket[i] = b < BUCKETS ? b : BUCKETS - 1;
      sum += wi;
    } else {
      w[i] = 0;
      bucket[i] = BUCKETS;
    }
  }
  // the bucket masses in a loop of their own (each summed in id order, as before): accumulating them in the loop
  // above made it ~3× slower in V8
  bucketMass.fill(0);
  for (let i = 0; i < vocab; i++) {
    const b = bucket[i];
    if (b < BUCKETS) bucketMass[b] += w[i];
  }
  const limit = topP * sum;
  let above = 0;
  let boundary = -1;
  let lastFilled = 0;
  for (let b = 0; b < BUCKETS; b++) {
    if (bucketMass[b] === 0) continue;
    lastFilled = b;
    if (above + bucketMass[b] >= limit) {
      boundary = b;
      break;
    }
    above += bucketMass[b];
  }
  if (boundary < 0) boundary = lastFilled; // rounding kept the total just under the limit: keep everything
  const ranked = gatherBucket(boundary, vocab).sort((a, b) => z[b] - z[a] || a - b);
  // A token stays while the mass ranked above it is below the limit (the one that crosses the line stays).
  let kept = 1;
  let keptMass = w[ranked[0]];
  while (kept < ranked.length && above + keptMass < limit) keptMass += w[ranked[kept++]];
  // min_p cuts the same ranking: binding only when the nucleus's last token weighs less than min_p, and
  // then everything at or above min_p lies inside the nucleus.
  if (minP > 0 && w[ranked[kept - 1]] < minP) return [drawAtLeast(vocab, minP, u), sum];

  let target = u * (above + keptMass);
  for (let b = 0; b < boundary; b++) {
    if (target < bucketMass[b]) return [drawInBucket(b, vocab, target), sum];
    target -= bucketMass[b];
  }
  let acc = 0;
  for (let j = 0; j < kept; j++) {
    acc += w[ranked[j]];
    if (acc > target) return [ranked[j], sum];
  }
  return [ranked[kept - 1], sum]; // rounding left the target at or past the total
}

/** The ids in bucket `b`, ascending, as a view of the index scratch. */
function gatherBucket(b: number, vocab: number): Int32Array {
  const bucket = bucketBuf;
  let n = 0;
  for (let i = 0; i < vocab; i++) if (bucket[i] === b) idxBuf[n++] = i;
  return idxBuf.subarray(0, n);
}

/** The token of bucket `b` where the running weight (in id order, as the bucket's mass was summed) passes `target`. */
function drawInBucket(b: number, vocab: number, target: number): number {
  const w = wBuf;
  const bucket = bucketBuf;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < vocab; i++) {
    if (bucket[i] === b) {
      acc += w[i];
      last = i;
      if (acc > target) return i;
    }
  }
  return last;
}

/** A draw among the tokens whose weight in `wBuf` is at least `floor`, in id order. */
function drawAtLeast(vocab: number, floor: number, u: number): number {
  const w = wBuf;
  let total = 0;
  for (let i = 0; i < vocab; i++) if (w[i] >= floor) total += w[i];
  const target = u * total;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < vocab; i++) {
    if (w[i] >= floor) {
      acc += w[i];
      last = i;
      if (acc > target) return i;
    }
  }
  return last;
}

/** min_p alone: the tokens within ln(min_p)·T of the best, drawn from in id order. */
export function drawMinP(z: Float32Array, vocab: number, max: number, invT: number, minP: number, u: number): number {
  ensureScratch(vocab);
  const idx = idxBuf;
  const w = wBuf;
  const zFloor = max + Math.log(minP) / invT;
  let n = 0;
  let total = 0;
  for (let i = 0; i < vocab; i++) {
    if (z[i] >= zFloor) {
      const wi = Math.exp((z[i] - max) * invT);
      if (wi >= minP) {
        idx[n] = i;
        w[n++] = wi;
        total += wi;
      }
    }
  }
  return drawListed(n, total, u);
}

/** A draw among the first `n` tokens listed in the scratch (ids in `idxBuf`, weights summing to `total` in `wBuf`). */
function drawListed(n: number, total: number, u: number): number {
  const idx = idxBuf;
  const w = wBuf;
  const target = u * total;
  let acc = 0;
  for (let j = 0; j < n; j++) {
    acc += w[j];
    if (acc > target) return idx[j];
  }
  return idx[n - 1];
}
