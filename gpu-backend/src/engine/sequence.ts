/**
 * One generating sequence inside the engine: its sampler, detokenizer and stop rules. The scheduler feeds it one
 * row of blended logits per step; it decides the token, the text that may be streamed, and whether it is done.
 */
import type { DrawJob } from '../sampling/draw-bounded.ts';
import { NonFiniteLogitsError, SamplingError, SequenceSampler } from '../sampling/sampler.ts';
import { IncrementalDecoder } from '../text/incremental-decoder.ts';
import { StopStringMatcher } from '../text/stop-strings.ts';
import type { TokenDecoder } from '../text/token-table.ts';
import { branchRowCount, type BranchNeeds, type RowHandle } from './rows.ts';
import type { FinishReason, GenerateEvent, GenerateJob, TokenOut } from './protocol.ts';

/** A generation in progress. */
export class Sequence {
  readonly sampler: SequenceSampler;
  private readonly decoder: IncrementalDecoder;
  private readonly stops: StopStringMatcher;
  private readonly stopIds: Set<number>;
  handle: RowHandle | null = null;
  /** the token to feed at the next decode step */
  nextToken = -1;
  /** prompt tokens written into the KV cache so far (the scheduler's chunked prefill) */
  prefilled = 0;
  generated = 0;
  finish: FinishReason | null = null;
  error: { message: string; code: string } | null = null;
  cancelled = false;
  /** the number drawn for the next token by `uniform()`, not yet used (undefined: none drawn) */
  private pendingUniform: number | null | undefined = undefined;

  constructor(
    readonly job: GenerateJob,
    readonly needs: BranchNeeds,
    tokens: TokenDecoder,
    eosTokenIds: number[],
    private readonly maxContext: number,
  ) {
    this.sampler = new SequenceSampler(job.params, job.promptIds, { stream: job.stream });
    this.decoder = new IncrementalDecoder(tokens, { skipSpecialTokens: job.skipSpecialTokens });
    this.stops = new StopStringMatcher(job.stop);
    this.stopIds = new Set([...job.stopTokenIds, ...(job.ignoreEos ? [] : eosTokenIds)]);
  }

  /** KV tokens this sequence may come to hold (prompt + budget, per branch row). */
  get reservedTokens(): number {
    const rows = branchRowCount(this.needs);
    return Math.min(this.job.promptIds.length + this.job.maxTokens, this.maxContext) * rows;
  }

  /**
   * Whether this sequence's tokens can be decided by a device-sampling graph (graph/device-sampling.ts): its
   * logit_bias and penalties are applied on the host only, and it returns at most `topCount` top logprobs.
   */
  deviceSampleable(topCount: number): boolean {
    const p = this.job.params;
    return (
      p.repetition_penalty === 1 &&
      p.presence_penalty === 0 &&
      p.frequency_penalty === 0 &&
      Object.keys(p.logit_bias).length === 0 &&
      p.top_logprobs <= topCount
    );
  }

  /**
   * The uniform number this sequence's next token is drawn with (null when greedy), taken from its stream once and
   * kept until a token is decided (a run that fails and is retried uses the same number, as the host would).
   */
  uniform(): number | null {
    if (this.pendingUniform === undefined) this.pendingUniform = this.sampler.drawUniform();
    return this.pendingUniform;
  }

  /**
   * Takes the token a device-sampling graph chose for this sequence (`token` ≥ 0; its logprob and the top logprobs,
   * best first, K of them), drawn with `uniform()`. A row the graph leaves to the host (−2: its truncation reaches
   * past the graph's candidates) or with no finite logit (−1) is sampled here from its logits with the same number,
   * so it gets the host's token or the host's error.
   */
  fromDevice(
    token: number,
    logprob: number,
    top: { ids: BigInt64Array; logprobs: Float64Array } | null,
    logitsRow: () => Float32Array,
  ): GenerateEvent {
    if (token < 0) return this.step(logitsRow());
    this.pendingUniform = undefined;
    this.sampler.record(token);
    const p = this.job.params;
    const out: TokenOut = { id: token, logprob: p.logprobs ? logprob : undefined, top: undefined };
    if (p.logprobs && p.top_logprobs > 0 && top) {
      out.top = [];
      // like the host's top-k, only tokens with a finite logit are listed
      for (let j = 0; j < p.top_logprobs && j < top.ids.length; j++)
        if (top.logprobs[j] !== -Infinity) out.top.push({ token: Number(top.ids[j]), logprob: top.logprobs[j] });
    }
    return this.accept(out);
  }

  /** Samples from this step's blended logits and returns the event to stream (with `finish` when it ends). */
  step(logits: Float32Array): GenerateEvent {
    let token: TokenOut;
    try {
      const u = this.pendingUniform;
      this.pendingUniform = undefined;
      const r = this.sampler.next(logits, u);
      token = { id: r.token, logprob: r.logprob, top: r.top };
    } catch (err) {
      if (!(err instanceof NonFiniteLogitsError || err instanceof SamplingError)) throw err;
      return this.fail({ message: err.message, code: err.code });
    }
    return this.accept(token);
  }

  /**
   * `step`'s first half for a row whose draw may run on another thread (SequenceSampler.boundedDraw): the processed
   * logits into `into` and the draw's job, or the event that ends the sequence (no finite logit).
   */
  prepareDraw(logits: Float32Array, into: Float32Array): DrawJob | GenerateEvent {
    try {
      const u = this.pendingUniform;
      this.pendingUniform = undefined;
      return this.sampler.prepareDraw(logits, into, u);
    } catch (err) {
      if (!(err instanceof NonFiniteLogitsError)) throw err;
      return this.fail({ message: err.message, code: err.code });
    }
  }

  /** `step`'s second half: the token drawBounded gave for `job` (UNDECIDED: the exact draw is taken here). */
  finishDraw(job: DrawJob, token: number): GenerateEvent {
    let out: TokenOut;
    try {
      out = { id: this.sampler.finishDraw(job, token).token, logprob: undefined, top: undefined };
    } catch (err) {
      if (!(err instanceof NonFiniteLogitsError || err instanceof SamplingError)) throw err;
      return this.fail({ message: err.message, code: err.code });
    }
    return this.accept(out);
  }

  /**
   * Whether a greedy token computed inside the graph (a decode-loop run) equals what `step` would choose: greedy,
   * nothing that changes the logits per sequence, no log-probabilities to report.
   */
  get loopable(): boolean {
    const p = this.job.params;
    return (
      p.temperature === 0 &&
      !p.logprobs &&
      p.repetition_penalty === 1 &&
      p.presence_penalty === 0 &&
      p.frequency_penalty === 0 &&
      Object.keys(p.logit_bias).length === 0
    );
  }

  /** Tokens this sequence may still generate. */
  get remaining(): number {
    return Math.min(this.job.maxTokens - this.generated, this.maxContext - this.job.promptIds.length - this.generated);
  }

  /** Takes a chosen token: stops, detokenization, budget. Returns the event to stream. */
  accept(token: TokenOut): GenerateEvent {
    this.generated++;
    this.nextToken = token.id;
    if (this.stopIds.has(token.id)) {
      this.finish = 'stop';
      return { id: this.job.id, text: this.flushText(), tokens: [token], finish: 'stop' };
    }
    const m = this.stops.push(this.decoder.push(token.id));
    if (m.stopped) {
      this.finish = 'stop';
      return { id: this.job.id, text: m.text, tokens: [token], finish: 'stop' };
    }
    const total = this.job.promptIds.length + this.generated;
    if (this.generated >= this.job.maxTokens || total >= this.maxContext) {
      this.finish = 'length';
      return { id: this.job.id, text: m.text + this.flushText(), tokens: [token], finish: 'length' };
    }
    return { id: this.job.id, text: m.text, tokens: [token] };
  }

  /** The event for a step with no finite logit, as a decode-loop graph reports it (token −1); like `step`'s error. */
  noFiniteLogit(vocabSize: number): GenerateEvent {
    return this.fail({
      message: `every logit of this sequence is NaN or ±∞ (vocabulary of ${vocabSize}), so no token can be sampled; check the model weights and λ (a large |λ| can overflow float16 logits)`,
      code: 'non_finite_logits',
    });
  }

  /**
   * Whether `nextToken` can be fed to the model: an id of the vocabulary (the scheduler checks this before each
   * decode step, so a bad id fails its own row instead of the step of the whole batch).
   */
  validNextToken(vocabSize: number): boolean {
    return Number.isInteger(this.nextToken) && this.nextToken >= 0 && this.nextToken < vocabSize;
  }

  /** The event for a sequence stopped from outside (cancelled, or failed with `error`). */
  end(reason: FinishReason, error?: { message: string; code: string }): GenerateEvent {
    this.finish = reason;
    this.error = error ?? null;
    return { id: this.job.id, text: '', tokens: [], finish: reason, ...(error ? { error } : {}) };
  }

  /** Ends the sequence with `error` from inside a step; the event carries the text still held back. */
  private fail(error: { message: string; code: string }): GenerateEvent {
    this.finish = 'error';
    this.error = error;
    return { id: this.job.id, text: this.flushText(), tokens: [], finish: 'error', error };
  }

  /** Text still held by the detokenizer and the stop matcher, when the sequence ends without a stop string. */
  private flushText(): string {
    const tail = this.stops.push(this.decoder.flush());
    return tail.stopped ? tail.text : tail.text + this.stops.flush();
  }
}
