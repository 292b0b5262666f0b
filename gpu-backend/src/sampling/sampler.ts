import type { SamplingParams } from './params.ts';
import { Rng, randomSeed } from './rng.ts';
import { drawFull, drawMinP, drawNucleus, drawTopK, softmaxSum } from './draw.ts';
import { drawBounded, maskRow, NO_FINITE, UNDECIDED, type DrawJob } from './draw-bounded.ts';
import { topKIndices } from './select.ts';

/** One token with its log-probability under the blended distribution after temperature. */
export interface TokenLogprob {
  token: number;
  logprob: number;
}

/** What one sampling step chose. */
export interface SampleResult {
  token: number;
  /** log-probability of `token`; present when `logprobs` was asked for */
  logprob?: number;
  /** the `top_logprobs` most likely tokens, best first (ties to the lower id); present when asked for */
  top?: TokenLogprob[];
}

/** No token of a row has a finite logit after logit_bias and penalties: the engine fails that request. */
export class NonFiniteLogitsError extends Error {
  readonly code = 'non_finite_logits';
  constructor(
    readonly vocabSize: number,
    readonly nanCount: number,
    readonly positiveInfinityCount: number,
  ) {
    super(
      `every logit of this sequence is NaN or ±∞ after logit_bias and penalties (vocabulary of ${vocabSize}: ` +
        `${nanCount} NaN, ${positiveInfinityCount} +∞, the rest −∞), so no token can be sampled; ` +
        'check the model weights and λ (a large |λ| can overflow float16 logits)',
    );
    this.name = 'NonFiniteLogitsError';
  }

  /** The error for a row of raw logits `[V]` that has no finite entry, with its NaN and +∞ counted. */
  static forRow(row: Float32Array): NonFiniteLogitsError {
    let nan = 0;
    let posInf = 0;
    for (let i = 0; i < row.length; i++) {
      if (Number.isNaN(row[i])) nan++;
      else if (row[i] === Infinity) posInf++;
    }
    return new NonFiniteLogitsError(row.length, nan, posInf);
  }
}

/**
 * The draw produced no valid token although the row had a finite logit — a sampler bug, never expected. It is a
 * per-row error like {@link NonFiniteLogitsError}: the scheduler ends this sequence alone, and no out-of-range id
 * ever reaches the model's input.
 */
export class SamplingError extends Error {
  readonly code = 'sampling_failed';
  constructor(detail: string) {
    super(`sampling failed for this sequence (${detail}); the request was ended, others were not affected`);
    this.name = 'SamplingError';
  }
}

/** The largest finite float32; processed logits saturate at ± this instead of overflowing to ±∞. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A processed logit stored to float32: results beyond the float32 range saturate at ±FLOAT32_MAX, +∞ included (so a
 * penalty or a bias can make a token as likely as float32 allows, but never +∞, whose weight against the maximum
 * would be ∞ − ∞ = NaN); −∞ stays −∞ (a ban, e.g. a bias of −∞, stays a ban); NaN (from parameters outside the
 * validated ranges) becomes −∞: no token. With validated parameters the double arithmetic itself cannot overflow,
 * so a finite logit stays finite.
 */
function saturate(x: number): number {
  if (x > FLOAT32_MAX) return FLOAT32_MAX;
  if (x < -FLOAT32_MAX && x !== -Infinity) return -FLOAT32_MAX;
  return x === x ? x : -Infinity;
}

// The processed row lives in scratch shared by all samplers of this thread (next() is synchronous).
let zBuf = new Float32Array(0);

function scratchRow(vocab: number): Float32Array {
  if (zBuf.length < vocab) zBuf = new Float32Array(vocab);
  return zBuf.subarray(0, vocab);
}

/** The best token of a processed row and its logit; NonFiniteLogitsError (counted on the raw `logits`) when none is finite. */
function argmax(z: Float32Array, logits: Float32Array): [best: number, max: number] {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) {
    if (z[i] > max) {
      max = z[i];
      best = i;
    }
  }
  if (best < 0) throw NonFiniteLogitsError.forRow(logits);
  return [best, max];
}

/**
 * Every draw keeps the best token (weight exp(0) = 1), so with a finite maximum it returns a finite-logit id; this
 * check makes that a guarantee: a broken draw fails this row, it never hands the model an invalid id.
 */
function checkToken(token: number, z: Float32Array): void {
  if (!Number.isInteger(token) || token < 0 || token >= z.length || !Number.isFinite(z[token])) {
    throw new SamplingError(`the draw returned ${String(token)} for a vocabulary of ${z.length}`);
  }
}

/**
 * Samples the tokens of one sequence from blended logits: logit_bias, then repetition / presence /
 * frequency penalties, then log-probabilities, then top_k → top_p → min_p truncation and a draw from the
 * sequence's own random stream (argmax when temperature is 0). Create one per sequence; `next()` records the
 * chosen token for the penalties of later steps.
 */
export class SequenceSampler {
  /** the seed of this sequence's stream (drawn at random when the params have none) */
  readonly seed: number;
  private readonly rng: Rng;
  private readonly seen: Set<number>;
  private readonly counts = new Map<number, number>();
  private readonly biasIds: number[] = [];
  private readonly biasValues: number[] = [];

  /** `stream` separates sequences that share a seed, e.g. the n choices of one request. */
  constructor(
    readonly params: SamplingParams,
    promptTokenIds: ArrayLike<number>,
    { stream = 0 }: { stream?: number } = {},
  ) {
    this.seed = params.seed ?? randomSeed();
    this.rng = new Rng(this.seed, stream);
    this.seen = new Set(Array.from(promptTokenIds));
    for (const [key, bias] of Object.entries(params.logit_bias)) {
      const id = Number(key);
      if (Number.isInteger(id) && id >= 0 && bias !== 0) {
        this.biasIds.push(id);
        this.biasValues.push(bias);
      }
    }
  }

  /** Whether this sequence draws a random number per token (temperature > 0 with a finite 1 / T); greedy ones draw none. */
  get sampled(): boolean {
    const t = this.params.temperature;
    return t > 0 && Number.isFinite(1 / t);
  }

  /**
   * The uniform number the next sampled token is drawn with, taken from this sequence's stream (null, and nothing
   * consumed, for greedy sequences). For sampling elsewhere (on the device) with the same stream: hand it to the
   * device, and if the device defers, to `next(logits, u)`; `next(logits)` ≡ `next(logits, drawUniform())`.
   */
  drawUniform(): number | null {
    return this.sampled ? this.rng.nextFloat() : null;
  }

  /** Records a token chosen elsewhere (on the device) for the penalties of later steps, as `next` does. */
  record(token: number): void {
    this.seen.add(token);
    this.counts.set(token, (this.counts.get(token) ?? 0) + 1);
  }

  /**
   * Chooses the next token from one row of blended logits `[V]` (not modified) and records it. With `uniform` (from
   * `drawUniform()`), a sampled sequence draws with that number instead of taking the next one from its stream.
   */
  next(logits: Float32Array, uniform?: number | null): SampleResult {
    const vocab = logits.length;
    if (this.boundedDraw(vocab)) {
      const job = this.prepareDraw(logits, scratchRow(vocab), uniform);
      return this.finishDraw(job, drawBounded(job));
    }
    const z = this.process(logits, scratchRow(vocab));
    const [best, max] = argmax(z, logits);

    const p = this.params;
    // Logprobs describe softmax(z / T). Greedy (T = 0) has no finite temperature to divide by, so its
    // logprobs use T = 1: the blended distribution as the model gives it, the one greedy takes the argmax of.
    // A temperature so small that 1 / T overflows (below ~5.6e-309) is greedy too: its distribution is one-hot on
    // the argmax, and dividing by it would weigh the best token 0·∞ = NaN.
    const sampled = this.sampled;
    const invT = sampled ? 1 / p.temperature : 1;
    let sum = -1;
    let token = best;
    if (sampled) {
      const u = uniform ?? this.rng.nextFloat();
      const topK = p.top_k > 0 && p.top_k < vocab ? p.top_k : 0;
      // (rows without logprobs took the bounded draws above; these need the normaliser drawNucleus/drawFull give)
      if (topK > 0) token = drawTopK(z, vocab, max, invT, topK, p.top_p, p.min_p, u);
      else if (p.top_p < 1) [token, sum] = drawNucleus(z, vocab, max, invT, p.top_p, p.min_p, u);
      else if (p.min_p > 0) token = drawMinP(z, vocab, max, invT, p.min_p, u);
      else [token, sum] = drawFull(z, vocab, max, invT, u);
    }
    checkToken(token, z);

    const result: SampleResult = { token };
    if (p.logprobs) {
      const logZ = Math.log(sum >= 0 ? sum : softmaxSum(z, vocab, max, invT));
      result.logprob = (z[token] - max) * invT - logZ;
      if (p.top_logprobs > 0) {
        const top = new Int32Array(p.top_logprobs);
        const n = topKIndices(z.subarray(0, vocab), p.top_logprobs, top);
        result.top = Array.from(top.subarray(0, n), (id) => ({ token: id, logprob: (z[id] - max) * invT - logZ }));
      }
    }
    this.record(token);
    return result;
  }

  /**
   * Whether `next` decides this sequence's tokens by a bounded draw (draw-bounded.ts): sampled, no top_k, no
   * logprobs, and top_p < 1 or no min_p. Such a row's draw is a pure function of its processed logits and a few
   * numbers ({@link DrawJob}), so it can run on another thread: `prepareDraw`, then `drawBounded` anywhere, then
   * `finishDraw` give `next`'s token (the same for the same u) and leave the same state.
   */
  boundedDraw(vocab: number): boolean {
    const p = this.params;
    return this.sampled && !p.logprobs && !(p.top_k > 0 && p.top_k < vocab) && (p.top_p < 1 || p.min_p === 0);
  }

  /**
   * The first half of `next` for a {@link boundedDraw} row: the processed logits into `into` (length V), the
   * maximum, and the uniform number (`uniform`, else the next of the stream). Throws NonFiniteLogitsError as `next`.
   */
  prepareDraw(logits: Float32Array, into: Float32Array, uniform?: number | null): DrawJob {
    const p = this.params;
    const u = uniform ?? this.rng.nextFloat();
    const job = { invT: 1 / p.temperature, topP: p.top_p, minP: p.min_p, u, source: logits };
    if (this.biasIds.length === 0 && p.repetition_penalty === 1 && p.presence_penalty === 0 && p.frequency_penalty === 0) {
      into.set(logits);
      return { ...job, z: into, max: NaN }; // raw: drawBounded masks it and finds the maximum, on whichever thread
    }
    const z = this.process(logits, into);
    return { ...job, z, max: argmax(z, logits)[1] };
  }

  /**
   * The second half: `token` is drawBounded(job) (UNDECIDED: the draw is taken exactly here, from job.z; NO_FINITE:
   * NonFiniteLogitsError); checks and records it. Throws SamplingError as `next`.
   */
  finishDraw(job: DrawJob, token: number): SampleResult {
    let t = token;
    if (t === NO_FINITE) throw NonFiniteLogitsError.forRow(job.source ?? job.z);
    if (t === UNDECIDED) {
      const { z, invT, topP, minP, u } = job;
      const max = job.max === job.max ? job.max : maskRow(z); // a raw row: drawBounded only read it
      if (max === -Infinity) throw NonFiniteLogitsError.forRow(job.source ?? z);
      t = topP < 1 ? drawNucleus(z, z.length, max, invT, topP, minP, u)[0] : drawFull(z, z.length, max, invT, u)[0];
    }
    checkToken(t, job.z);
    this.record(t);
    return { token: t };
  }

  /**
   * Copies the row into scratch with NaN and ±∞ masked to −∞, then applies logit_bias and penalties to the
   * finite entries, each result saturated to the float32 range (see `saturate`). So the processed row holds only
   * finite values and −∞, and its maximum is finite unless nothing is left (then NonFiniteLogitsError), which is
   * what the draws need: weights exp((z − max)/T) ∈ [0, 1], the best one exactly 1.
   */
  private process(logits: Float32Array, z: Float32Array): Float32Array {
    const vocab = logits.length;
    z.set(logits);
    for (let i = 0; i < vocab; i++) if (z[i] - z[i] !== 0) z[i] = -Infinity;
    for (let j = 0; j < this.biasIds.length; j++) {
      const id = this.biasIds[j];
      if (id < vocab && z[id] !== -Infinity) z[id] = saturate(z[id] + this.biasValues[j]);
    }
    const rp = this.params.repetition_penalty;
    if (rp !== 1) {
      for (const id of this.seen) {
        if (id < vocab && z[id] !== -Infinity) z[id] = saturate(z[id] > 0 ? z[id] / rp : z[id] * rp);
      }
    }
    const presence = this.params.presence_penalty;
    const frequency = this.params.frequency_penalty;
    if (presence !== 0 || frequency !== 0) {
      for (const [id, count] of this.counts) {
        if (id < vocab && z[id] !== -Infinity) z[id] = saturate(z[id] - (presence + frequency * count));
      }
    }
    return z;
  }
}
