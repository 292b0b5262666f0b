/**
 * One generating sequence inside the engine: its sampler, detokenizer and stop rules. The scheduler feeds it one
 * row of blended logits per step; it decides the token, the text that may be streamed, and whether it is done.
 */
import { NonFiniteLogitsError, SamplingError, SequenceSampler } from '../sampling/sampler.ts';
import { IncrementalDecoder } from '../text/incremental-decoder.ts';
import { StopStringMatcher } from '../text/stop-strings.ts';
import type { TextTokenizer } from '../text/tokenizer.ts';
import type { BranchNeeds, RowHandle } from './rows.ts';
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
  generated = 0;
  finish: FinishReason | null = null;
  error: { message: string; code: string } | null = null;
  cancelled = false;

  constructor(
    readonly job: GenerateJob,
    readonly needs: BranchNeeds,
    tokenizer: TextTokenizer,
    eosTokenIds: number[],
    private readonly maxContext: number,
  ) {
    this.sampler = new SequenceSampler(job.params, job.promptIds, { stream: job.stream });
    this.decoder = new IncrementalDecoder(tokenizer, { skipSpecialTokens: job.skipSpecialTokens });
    this.stops = new StopStringMatcher(job.stop);
    this.stopIds = new Set([...job.stopTokenIds, ...(job.ignoreEos ? [] : eosTokenIds)]);
  }

  /** KV tokens this sequence may come to hold (prompt + budget, per branch row). */
  get reservedTokens(): number {
    const rows = (this.needs.aligned ? 1 : 0) + (this.needs.reference ? 1 : 0);
    return Math.min(this.job.promptIds.length + this.job.maxTokens, this.maxContext) * rows;
  }

  /** Samples from this step's blended logits and returns the event to stream (with `finish` when it ends). */
  step(logits: Float32Array): GenerateEvent {
    let token: TokenOut;
    try {
      const r = this.sampler.next(logits);
      token = { id: r.token, logprob: r.logprob, top: r.top };
    } catch (err) {
      if (!(err instanceof NonFiniteLogitsError || err instanceof SamplingError)) throw err;
      return this.fail({ message: err.message, code: err.code });
    }
    return this.accept(token);
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
