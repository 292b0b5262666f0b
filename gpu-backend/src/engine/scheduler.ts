/**
 * Continuous batching inside the engine thread. Each turn of the loop:
 *   1. drops finished and cancelled sequences (their cache rows are freed at once),
 *   2. admits queued work while the batch and the KV budget allow (overload waits in the queue),
 *   3. prefills prompts within a token budget: the next chunk of prompts already started, then the first chunks of
 *      new ones batched into runs (a prompt that fits one chunk is prefilled whole and its first token sampled),
 *   4. runs one decode step for every sequence whose prompt is in the cache, each row with its own λ and sampling.
 * Logits jobs are one prefill each, read out for every λ of the job, and leave no rows behind.
 *
 * Chunked prefill (EngineLimits.prefillChunkTokens = C): a prompt longer than C is written into its rows of the
 * resident KV cache C tokens per turn of the loop — its first chunk batched with other new prompts as a first
 * prompt, later chunks after the past already there, one run per branch row (what GroupQueryAttention accepts),
 * nothing read back — and its last prompt token goes through the decode step with the running sequences, which
 * samples its first token. While streams decode, each turn prefills at most C prompt positions (padded) beside
 * their decode step, so a long prompt delays them by about one chunk per token, never by its whole length; with no
 * stream decoding, a turn prefills the first chunks of every new prompt, within the per-run limit. Prompts still being
 * prefilled keep their rows at the end of each cache group (RowAllocator.arrangeAtEnd), so the decode step's rows
 * and each prefill run's rows stay contiguous.
 *
 * Faults stay with the request they belong to. Whatever one sequence's own work throws — building it from its job,
 * sampling, detokenizing, stop strings, logprobs — ends that sequence alone with an error event; the batch goes
 * on. A decode token that is not a vocabulary id fails its row before the step, never the step. Only a failed
 * model run touches other requests, and only those in that run: a failed prefill is retried one sequence at a
 * time (so a request whose prompt breaks the run fails alone), a failed later chunk ends its own sequence, a failed
 * decode step ends the sequences it advanced. The engine itself keeps serving.
 */
import type { LoadedModel } from './model-loader.ts';
import { NonFiniteLogitsError } from '../sampling/sampler.ts';
import { RunSampling, rowFailed, timedStep } from './run-sampling.ts';
import { logitsNeeds, logitsReadout } from './logits-readout.ts';
import type { EngineLimits, EngineStats, GenerateEvent, GenerateJob, LogitsJob, LogitsResult } from './protocol.ts';
import type { Blend } from './mix.ts';
import { RowAllocator, branchRowCount, needsFor, type SequencePlan } from './rows.ts';
import { Sequence } from './sequence.ts';
import { promptProblem } from './prompt-limit.ts';

type Queued = { kind: 'generate'; seq: Sequence } | { kind: 'logits'; job: LogitsJob; reserved: number };

/** Where the scheduler sends what happens. */
export interface SchedulerSink {
  events(events: GenerateEvent[], stepMs: number[]): void;
  logits(id: number, result: LogitsResult): void;
  rejected(id: number, error: { message: string; code: string }): void;
}

/** The engine's batching loop over one loaded model. */
export class Scheduler {
  private readonly rows: RowAllocator;
  private readonly queue: Queued[] = [];
  private readonly running = new Map<number, Sequence>();
  /** running sequences whose prompt is not yet all in the cache, oldest first (they do not decode yet) */
  private readonly pending = new Set<Sequence>();
  /** prompt tokens per chunk and padded prompt positions per turn (Infinity: whole prompts, at admission) */
  private readonly chunkTokens: number;
  private prefilledTokens = 0;
  private reserved = 0;
  private wake: (() => void) | null = null;
  private stopping = false;
  private prefillSteps = 0;
  private decodeSteps = 0;
  private lastBatch = 0;
  private readonly promptTokens = { aligned: 0, reference: 0 };
  private readonly completionTokens = { aligned: 0, reference: 0 };
  private readonly sampling: RunSampling;
  private crashCode: number | null = null;

  constructor(
    private readonly model: LoadedModel,
    private readonly limits: EngineLimits,
    private readonly sink: SchedulerSink,
  ) {
    this.rows = new RowAllocator(model.runner);
    this.sampling = new RunSampling(model, this.rows, limits);
    const chunk = limits.prefillChunkTokens ?? 0;
    this.chunkTokens = chunk > 0 ? chunk : Infinity;
  }

  /** Queues a generation; refused at once when the queue is full or the request can never fit. */
  submitGenerate(job: GenerateJob): void {
    let seq: Sequence;
    try {
      seq = new Sequence(
        job,
        needsFor(this.model.runner.manifest, [job.mix ?? job.lambda]),
        this.model.decoder,
        this.model.eosTokenIds,
        this.model.maxContext,
      );
    } catch (err) {
      // a job the sequence cannot be built from (e.g. a seed that is not a number) is refused alone
      this.sink.rejected(job.id, {
        message: `the engine cannot run this request: ${(err as Error).message}`,
        code: 'invalid_job',
      });
      return;
    }
    if (!this.accept(job.id, seq.reservedTokens, job.promptIds.length)) return;
    this.queue.push({ kind: 'generate', seq });
    this.nudge();
  }

  /** Queues a logits job. */
  submitLogits(job: LogitsJob): void {
    let reserved: number;
    try {
      reserved = job.inputIds.length * branchRowCount(logitsNeeds(this.model.runner.manifest, job));
    } catch (err) {
      this.sink.rejected(job.id, {
        message: `the engine cannot run this request: ${(err as Error).message}`,
        code: 'invalid_job',
      });
      return;
    }
    if (!this.accept(job.id, reserved, job.inputIds.length)) return;
    this.queue.push({ kind: 'logits', job, reserved });
    this.nudge();
  }

  /** Marks a request cancelled; its rows leave the batch before the next step. */
  cancel(id: number): void {
    const seq = this.running.get(id);
    if (seq) {
      seq.cancelled = true;
      return;
    }
    const i = this.queue.findIndex((q) => (q.kind === 'generate' ? q.seq.job.id : q.job.id) === id);
    if (i >= 0) {
      const [q] = this.queue.splice(i, 1);
      if (q.kind === 'generate') this.sink.events([q.seq.end('cancelled')], []);
      else this.sink.rejected(id, { message: 'cancelled before it ran', code: 'cancelled' });
    }
  }

  /** Stops the loop after the current step. */
  stop(): void {
    this.stopping = true;
    this.nudge();
  }

  /** A snapshot of the engine's state. */
  stats(): EngineStats {
    const caches = this.model.runner.caches;
    return {
      running: this.running.size,
      queued: this.queue.length,
      rows: caches.reduce((s, c) => s + c.size, 0),
      kvTokensUsed: caches.reduce((s, c) => s + c.usedTokens, 0),
      kvTokensBudget: this.limits.maxKvTokens,
      kvTokensReserved: this.reserved,
      kvBytesAllocated: caches.reduce((s, c) => s + c.allocatedBytes, 0),
      hostDeviceBytes: { ...this.model.runner.transferBytes },
      forwardPasses: this.model.runner.forwardPasses,
      prefillSteps: this.prefillSteps,
      prefilledTokens: this.prefilledTokens,
      prefilling: this.pending.size,
      decodeSteps: this.decodeSteps,
      lastBatchSize: this.lastBatch,
      promptTokens: { ...this.promptTokens },
      completionTokens: { ...this.completionTokens },
    };
  }

  /** Tests (ToWorker 'crash'): ends the thread with `code` at the start of the next turn, when no run is in flight. */
  crashAtNextTurn(code: number): void {
    this.crashCode = code;
    this.nudge();
  }

  /** Runs until stop(). */
  async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.crashCode !== null) process.exit(this.crashCode);
      const events: GenerateEvent[] = [];
      const stepMs: number[] = [];
      this.sweep(events);
      const admitted = this.admit();
      if (admitted.length === 0 && this.running.size === 0) {
        if (events.length > 0) this.sink.events(events, stepMs);
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      // prefill and decode contain their own failures (see the top of this file)
      await this.prefill(admitted, events, stepMs);
      await this.decode(events, stepMs);
      // finished rows leave now, so the stats sent with these events already show them gone
      this.sweep(events);
      if (events.length > 0 || stepMs.length > 0) this.sink.events(events, stepMs);
      // let cancel and submit messages in between steps
      await new Promise((r) => setImmediate(r));
    }
    this.sink.events(
      [...this.running.values()].filter((s) => !s.finish).map((s) => s.end('cancelled')),
      [],
    );
  }

  private accept(id: number, reserved: number, promptLength: number): boolean {
    const problem = promptProblem(promptLength, this.model.maxContext - 1);
    if (problem) {
      this.sink.rejected(id, problem);
      return false;
    }
    if (reserved > this.limits.maxKvTokens) {
      this.sink.rejected(id, {
        message: `the request needs ${reserved} KV tokens but the engine's budget is ${this.limits.maxKvTokens}; lower max_tokens`,
        code: 'request_too_large',
      });
      return false;
    }
    if (this.queue.length >= this.limits.maxQueue) {
      this.sink.rejected(id, {
        message: `the engine queue is full (${this.limits.maxQueue} waiting); retry later`,
        code: 'queue_full',
      });
      return false;
    }
    return true;
  }

  private nudge(): void {
    this.wake?.();
  }

  /** Frees finished and cancelled sequences (a cancelled one gets its final event here). */
  private sweep(events: GenerateEvent[]): void {
    for (const [id, seq] of this.running) {
      if (seq.cancelled && !seq.finish) events.push(seq.end('cancelled'));
      if (!seq.finish) continue;
      this.pending.delete(seq);
      if (seq.handle) this.rows.remove(seq.handle);
      seq.handle = null;
      this.reserved -= seq.reservedTokens;
      this.running.delete(id);
    }
  }

  /** Takes queued work in order while the batch and the KV budget have room. */
  private admit(): Queued[] {
    const out: Queued[] = [];
    let generations = 0;
    while (this.queue.length > 0) {
      const q = this.queue[0];
      const need = q.kind === 'generate' ? q.seq.reservedTokens : q.reserved;
      const batchFull = q.kind === 'generate' && this.running.size + generations >= this.limits.maxBatch;
      if (batchFull || this.reserved + need > this.limits.maxKvTokens) break;
      this.queue.shift();
      this.reserved += need;
      if (q.kind === 'generate') generations++;
      out.push(q);
    }
    return out;
  }

  private async prefill(admitted: Queued[], events: GenerateEvent[], stepMs: number[]): Promise<void> {
    for (const q of admitted) if (q.kind === 'logits') await this.runLogits(q.job, q.reserved, stepMs);
    for (const q of admitted) if (q.kind === 'generate') this.place(q.seq, events);
    // the per-turn budget protects streams that decode; with none running, nothing waits on this turn, and new
    // prompts are prefilled as widely as the per-run limit allows (a burst of short prompts stays one run)
    const decoding = this.running.size > this.pending.size;
    let budget = decoding ? this.chunkTokens : Infinity;
    // later chunks of prompts already started, oldest first; at least one run per turn, whatever the budget
    let ran = false;
    for (const seq of [...this.pending]) {
      if (seq.finish || seq.prefilled === 0) continue;
      const n = Math.min(seq.job.promptIds.length - 1 - seq.prefilled, this.chunkTokens);
      if (ran && n > budget) return;
      await this.chunkRun(seq, n, events, stepMs);
      budget -= n;
      ran = true;
    }
    // first chunks of new prompts, in runs whose padded size stays within the budget and the per-run limit
    let group: Sequence[] = [];
    let longest = 0;
    const flush = async () => {
      if (group.length > 0) await this.prefillGroup(group, events, stepMs);
      budget -= longest * group.length;
      ran = ran || group.length > 0;
      group = [];
      longest = 0;
    };
    for (const seq of [...this.pending]) {
      if (seq.finish || seq.prefilled > 0) continue;
      const len = this.firstChunk(seq).length;
      const wider = Math.max(longest, len);
      if (
        group.length > 0 &&
        (wider * (group.length + 1) * 2 > this.limits.maxPrefillTokens || wider * (group.length + 1) > budget)
      )
        await flush();
      if (ran && len > budget) break;
      group.push(seq);
      longest = Math.max(longest, len);
    }
    await flush();
  }

  /** Puts an admitted sequence into the running set with its cache rows; its prompt waits in `pending`. */
  private place(seq: Sequence, events: GenerateEvent[]): void {
    // running from here on: sweep frees its reservation (and its rows, if any) whichever way it ends
    this.running.set(seq.job.id, seq);
    try {
      seq.handle = this.rows.add(seq.needs);
    } catch (err) {
      this.emit(
        seq,
        seq.end('error', { message: `no KV cache rows for this request: ${(err as Error).message}`, code: 'engine_error' }),
        events,
      );
      return;
    }
    this.count(this.promptTokens, seq, seq.job.promptIds.length);
    this.pending.add(seq);
  }

  /** The tokens of a prompt's first prefill run: the whole prompt when it fits one chunk. */
  private firstChunk(seq: Sequence): number[] {
    const ids = seq.job.promptIds;
    return ids.length <= this.chunkTokens ? ids : ids.slice(0, this.chunkTokens);
  }

  private async prefillGroup(group: Sequence[], events: GenerateEvent[], stepMs: number[]): Promise<void> {
    try {
      await this.prefillRun(group, events, stepMs);
    } catch (err) {
      if (group.length === 1) {
        this.failRun(group, err, events);
        return;
      }
      // which prompt broke the run is not known: each one alone, so the others still start and only the one that
      // fails alone fails
      for (const seq of group) {
        try {
          await this.prefillRun([seq], events, stepMs);
        } catch (alone) {
          this.failRun([seq], alone, events);
        }
      }
    }
  }

  /**
   * One first-prompt run over sequences with nothing in the cache yet: each whole prompt that fits one chunk, with
   * its first token sampled, or its first chunk (its logits unread).
   */
  private async prefillRun(seqs: Sequence[], events: GenerateEvent[], stepMs: number[]): Promise<void> {
    const handles = seqs.map((s) => s.handle!);
    if (!this.rows.isContiguous(handles)) this.rows.arrangeAtEnd(handles);
    const chunks = seqs.map((s) => this.firstChunk(s));
    const plan = this.rows.prefillPlan(
      seqs.map((s, i) => ({ handle: s.handle!, tokens: chunks[i], lambdas: [s.job.mix ?? s.job.lambda] })),
    );
    const whole = seqs.map((s, i) => (chunks[i].length === s.job.promptIds.length ? s : null));
    if (whole.some((s) => s !== null)) await this.sampleRun(plan, whole, events, stepMs);
    else {
      const t0 = performance.now();
      await this.model.runner.fill(plan);
      this.rows.commit(plan);
      stepMs.push(performance.now() - t0);
    }
    this.prefillSteps++;
    seqs.forEach((s, i) => this.prefilledChunk(s, chunks[i].length));
  }

  /** A later chunk of `n` tokens of a started prompt: one run per branch row, nothing read back. */
  private async chunkRun(seq: Sequence, n: number, events: GenerateEvent[], stepMs: number[]): Promise<void> {
    const tokens = seq.job.promptIds.slice(seq.prefilled, seq.prefilled + n);
    try {
      const t0 = performance.now();
      for (const plan of this.rows.chunkPlans(seq.handle!, tokens)) await this.model.runner.fill(plan);
      this.rows.commitChunk(seq.handle!, n);
      stepMs.push(performance.now() - t0);
    } catch (err) {
      // the run held this sequence's rows only: it ends alone
      this.failRun([seq], err, events);
      return;
    }
    this.prefillSteps++;
    this.prefilledChunk(seq, n);
  }

  /**
   * After `n` more prompt tokens of `seq` went into the cache: a whole prompt (first token sampled) or one with
   * only its last token left starts decoding (that token is its next decode input, and the step samples the first
   * generated token).
   */
  private prefilledChunk(seq: Sequence, n: number): void {
    seq.prefilled += n;
    this.prefilledTokens += n;
    const len = seq.job.promptIds.length;
    if (seq.prefilled === len) this.pending.delete(seq);
    else if (seq.prefilled === len - 1) {
      seq.nextToken = seq.job.promptIds[len - 1];
      this.pending.delete(seq);
    }
  }

  /** Runs a step whose output row i is `seqs[i]`'s next token (run-sampling.ts) and emits each row's event. */
  private async sampleRun(
    plan: SequencePlan,
    seqs: (Sequence | null)[],
    events: GenerateEvent[],
    stepMs: number[],
  ): Promise<void> {
    const out = await this.sampling.run(plan, seqs, stepMs);
    out.forEach((ev, i) => ev && this.emit(seqs[i]!, ev, events));
  }

  /** Ends the sequences of a model run that threw (the engine goes on with the others and with new work). */
  private failRun(seqs: Sequence[], err: unknown, events: GenerateEvent[]): void {
    const error = { message: `engine step failed: ${err instanceof Error ? err.message : String(err)}`, code: 'engine_error' };
    for (const seq of seqs) if (!seq.finish) this.emit(seq, seq.end('error', error), events);
  }

  private async decode(events: GenerateEvent[], stepMs: number[]): Promise<void> {
    const V = this.model.vocabSize;
    // a row whose next input is not a vocabulary id would fail the run of the whole batch: it fails alone
    for (const seq of this.running.values()) {
      if (this.pending.has(seq)) continue;
      if (!seq.finish && !seq.cancelled && !seq.validNextToken(V)) {
        this.emit(
          seq,
          seq.end('error', {
            message: `internal error: the next input token ${String(seq.nextToken)} is not an id of the vocabulary of ${V}; the request was ended`,
            code: 'sequence_failed',
          }),
          events,
        );
      }
    }
    this.sweep(events);
    const live = [...this.running.values()].filter((s) => !this.pending.has(s));
    if (live.length === 0) return;
    // the decode step's rows must be one range per group: prompts still being prefilled go to the end
    if (this.pending.size > 0 && !this.rows.isContiguous(live.map((s) => s.handle!)))
      this.rows.arrangeAtEnd([...this.pending].map((s) => s.handle!));
    try {
      await this.decodeRun(live, events, stepMs);
    } catch (err) {
      // the run itself failed: its rows cannot be told apart (they share one run), so they end; the engine goes on
      this.failRun(live, err, events);
    }
  }

  private async decodeRun(live: Sequence[], events: GenerateEvent[], stepMs: number[]): Promise<void> {
    const next = new Map<number, { token: number; lambdas: Blend[] }>();
    const byHandle = new Map<number, Sequence>();
    for (const s of live) {
      next.set(s.handle!.id, { token: s.nextToken, lambdas: [s.job.mix ?? s.job.lambda] });
      byHandle.set(s.handle!.id, s);
    }
    const plan = this.rows.decodePlan(next);
    // output row i is seqs[i]'s, looked up once for the step (or for every step of a decode-loop run)
    const seqs = plan.handles.map((h) => byHandle.get(h.id)!);
    const V = this.model.vocabSize;
    this.lastBatch = live.length;
    const steps = this.loopSteps(live);
    if (steps > 1) {
      // every sequence is greedy: M steps in one run, the tokens then taken one step at a time
      const t0 = performance.now();
      const tokens = await this.model.runner.loop(plan, steps);
      this.rows.commitSteps(plan, steps);
      stepMs.push(performance.now() - t0);
      this.decodeSteps += steps;
      for (const row of tokens) {
        for (let i = 0; i < seqs.length; i++) {
          const seq = seqs[i];
          if (seq.finish) continue;
          let ev: GenerateEvent;
          try {
            // −1: the graph found no finite logit in this row (see finiteArgMax in graph/model-graph.ts)
            ev = row[i] < 0 ? seq.noFiniteLogit(V) : seq.accept({ id: row[i] });
          } catch (err) {
            ev = rowFailed(seq, err);
          }
          this.emit(seq, ev, events);
        }
      }
      return;
    }
    await this.sampleRun(plan, seqs, events, stepMs);
    this.decodeSteps++;
  }

  /** Decode steps for the next run: > 1 only with a decode-loop graph and every sequence greedy. */
  private loopSteps(live: Sequence[]): number {
    const limit = this.limits.decodeLoopSteps ?? 0;
    if (limit < 2 || !this.model.runner.hasLoop || !live.every((s) => s.loopable)) return 1;
    return Math.max(1, Math.min(limit, ...live.map((s) => s.remaining)));
  }

  private emit(seq: Sequence, ev: GenerateEvent, events: GenerateEvent[]): void {
    if (ev.tokens.length > 0) this.count(this.completionTokens, seq, ev.tokens.length);
    if (ev.finish) {
      const prompt = seq.job.promptIds.length;
      const completion = seq.generated;
      const branch = (on: boolean) => ({ prompt_tokens: on ? prompt : 0, completion_tokens: on ? completion : 0 });
      const adapters = seq.needs.adapters;
      ev.usage = {
        prompt_tokens: prompt,
        completion_tokens: completion,
        aligned: branch(seq.needs.aligned || (adapters?.length ?? 0) > 0),
        reference: branch(seq.needs.reference),
        ...(adapters ? { adapters: Object.fromEntries(adapters.map((a) => [a, branch(true)])) } : {}),
      };
    }
    events.push(ev);
  }

  private count(into: { aligned: number; reference: number }, seq: Sequence, n: number): void {
    if (seq.needs.aligned || (seq.needs.adapters?.length ?? 0) > 0) into.aligned += n;
    if (seq.needs.reference) into.reference += n;
  }

  /** One forward pass for a logits job, read out for every λ (and each branch on its own when asked). */
  private async runLogits(job: LogitsJob, reserved: number, stepMs: number[]): Promise<void> {
    const readout = logitsReadout(this.model.runner.manifest, job);
    let handle: ReturnType<RowAllocator['add']> | null = null;
    try {
      handle = this.rows.add(readout.needs);
      const plan = this.rows.prefillPlan([{ handle, tokens: job.inputIds, lambdas: readout.lambdas }], job.positions === 'all');
      const logits = await timedStep(this.model.runner, this.rows, plan, stepMs);
      this.prefillSteps++;
      this.sink.logits(job.id, readout.result(logits, plan.positions[0].length, this.model.vocabSize));
    } catch (err) {
      this.sink.rejected(job.id, {
        message: (err as Error).message,
        code: err instanceof NonFiniteLogitsError ? err.code : 'engine_error',
      });
    } finally {
      if (handle) this.rows.remove(handle);
      this.reserved -= reserved;
    }
  }
}
