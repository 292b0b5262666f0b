/**
 * The one place that owns a generation's choices: starting one engine generation per choice (the status is known
 * only once every choice was admitted, so a full queue is a 429 and never a broken stream), merging their events
 * in arrival order with the usage ledger seeing each one, and cancelling them all when the client goes away.
 *
 * One failed choice fails the whole request (an OpenAI answer has no per-choice error), so the others — the n
 * choices of its prompt and those of its other prompts — are of no use any more: they are cancelled at once
 * ({@link ChoiceRun.stop}) instead of generating on to their max_tokens in the shared batch, and the error answer
 * waits until the engine has ended each of them (one step; bounded by {@link SETTLE_MS}). The tokens they generated
 * meanwhile were generated, and the ledger counts them; waiting makes its record final (state `failed`, the usage of
 * everything generated) before the error leaves — the error body carries no usage, and the edge reads a failed
 * request's usage from the ledger (worker/src/usage/backend-ledger.ts), which it would otherwise find still
 * `running`, or still growing after it gave up waiting. Non-streamed: the answer is the error (500 for a row's own
 * failure, 503 for a shutdown). Streamed: the status went out; no sibling's tokens are relayed after the failure,
 * and the error event follows once the siblings ended (server/generation/stream.ts).
 */
import type { Logger } from 'pino';
import type { Usage } from '../../../../shared/src/responses.ts';
import type { Generation } from '../../engine/engine.ts';
import type { GenerateEvent } from '../../engine/protocol.ts';
import { failureOf, rejectionError, type RejectionFields } from '../engine-error.ts';
import type { PreparedGeneration } from '../prepare/generation.ts';
import type { ServedModel } from '../registry.ts';
import type { LedgerTicket, UsageLedger } from '../usage-ledger.ts';
import { usageOf } from '../wire/format.ts';

/** One choice's event stream with its first event already read (so admission is known). */
interface Started {
  index: number;
  it: AsyncIterator<GenerateEvent>;
  first: GenerateEvent;
  gen: Generation;
}

/**
 * How long a failed request waits for its other choices to end after cancelling them: a cancellation takes the
 * engine one step; past this (a step that never ends) the error answer goes out anyway, never a hang.
 */
export const SETTLE_MS = 5000;

/** What a finished request is logged with. */
export interface RunLog {
  log: Logger;
  stream: boolean;
  /** the prompt and completion texts reach the log only when the operator asked (log_prompts): the prompt, else undefined */
  prompt: unknown;
}

/** Waits for `p` to settle, at most {@link SETTLE_MS}. */
async function settledWithin(p: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((r) => (timer = setTimeout(r, SETTLE_MS)));
  await Promise.race([p, bound]);
  clearTimeout(timer);
}

/** The fields an engine refusal of this request names (engine-error.ts). */
function fieldsOf(prep: PreparedGeneration): RejectionFields {
  return { prompt: prep.promptParam, budget: 'max_tokens' };
}

/**
 * The ledger entry of a request whose choices `ran` (true: it got its first event): a choice that never ran
 * processed no prompt, and a prompt none of whose choices ran is not counted.
 */
function openTicket(
  model: ServedModel,
  prep: PreparedGeneration,
  ledger: { ledger: UsageLedger; dispatchId: string },
  ran: boolean[],
): LedgerTicket {
  // the jobs are the n choices of each prompt in turn (prepare/generation.ts)
  const promptsOnce = prep.prompts.reduce(
    (s, p, i) => s + (ran.slice(i * prep.n, (i + 1) * prep.n).some(Boolean) ? p.ids.length : 0),
    0,
  );
  return ledger.ledger.open(
    ledger.dispatchId,
    { id: model.config.id, mode: model.config.mode },
    prep.lambda,
    prep.jobs.map((j, i) => (ran[i] ? j.promptIds.length : 0)),
    promptsOnce,
    prep.jobs[0]?.mix,
  );
}

/**
 * A request refused after some of its choices ran (all of them cancelled by now): feeds the ledger every event of
 * those choices until each ended — up to {@link SETTLE_MS}, after which the rest are still counted as they come —
 * and ends the refused ones with nothing generated.
 */
async function settleRefused(
  ticket: LedgerTicket,
  its: AsyncIterator<GenerateEvent>[],
  firstOf: (i: number) => GenerateEvent | null,
): Promise<void> {
  const drain = async (it: AsyncIterator<GenerateEvent>, i: number) => {
    const first = firstOf(i);
    if (first === null) return ticket.broken(i);
    ticket.event(i, first);
    try {
      for (let ev = first; !ev.finish;) {
        const r = await it.next();
        if (r.done) break;
        ev = r.value;
        ticket.event(i, ev);
      }
    } catch {
      // its engine failed: what it generated so far is counted
    }
    ticket.broken(i); // (no-op when its final event came)
  };
  await settledWithin(Promise.all(its.map(drain)));
}

/** The running choices of one request. */
export class ChoiceRun {
  private constructor(
    private readonly model: ServedModel,
    private readonly prep: PreparedGeneration,
    private readonly started: Started[],
    private readonly ticket: LedgerTicket,
    private readonly runLog: RunLog,
  ) {}

  /** Resolves once every choice's pump has ended (its final event, or its engine's failure); set by {@link events}. */
  private settled: Promise<unknown> = Promise.resolve();

  /**
   * Starts every job and waits for each one's first event; on any refusal cancels the rest and throws the HTTP
   * error. `signal` (the client's) cancels every choice; the ledger counts them under `dispatchId`. A request none
   * of whose choices ran is not in the ledger (it generated nothing); one refused after some of its choices ran —
   * a choice queued behind its sibling refused at a shutdown, or failed with its engine, while the sibling had
   * generated — is, with what those choices generated until their cancellation landed ({@link settleRefused}).
   */
  static async start(
    model: ServedModel,
    prep: PreparedGeneration,
    signal: AbortSignal,
    ledger: { ledger: UsageLedger; dispatchId: string },
    runLog: RunLog,
  ): Promise<ChoiceRun> {
    const gens: Generation[] = [];
    try {
      for (const j of prep.jobs) gens.push(model.engine.generate(j));
    } catch (err) {
      // an engine that failed refuses new work at once: its state, a 503 (not a 500 for this request)
      gens.forEach((g) => g.cancel());
      throw rejectionError(err, fieldsOf(prep));
    }
    const its = gens.map((g) => g.events[Symbol.asyncIterator]());
    const cancelAll = () => gens.forEach((g) => g.cancel());
    signal.addEventListener('abort', cancelAll, { once: true });
    const firsts = await Promise.allSettled(its.map((it) => it.next()));
    const failed = firsts.find((f) => f.status === 'rejected');
    const firstOf = (i: number): GenerateEvent | null => {
      const f = firsts[i];
      return f.status === 'fulfilled' && !f.value.done ? f.value.value : null;
    };
    if (failed) {
      cancelAll();
      const ran = firsts.map((_, i) => firstOf(i) !== null);
      if (ran.some(Boolean)) await settleRefused(openTicket(model, prep, ledger, ran), its, firstOf);
      else await Promise.allSettled(its.map((it) => it.return?.()));
      throw rejectionError((failed as PromiseRejectedResult).reason, fieldsOf(prep));
    }
    const started = its.map((it, index) => ({ index, it, gen: gens[index], first: firstOf(index)! }));
    const ticket = openTicket(
      model,
      prep,
      ledger,
      its.map(() => true),
    );
    return new ChoiceRun(model, prep, started, ticket, runLog);
  }

  get choices(): number {
    return this.started.length;
  }

  /** Cancels every choice. */
  cancel(): void {
    this.started.forEach((s) => s.gen.cancel());
  }

  /**
   * Cancels every choice still running and waits (up to {@link SETTLE_MS}) until each has ended, so that the ledger
   * holds the request's final usage: for a request that will answer with an error.
   */
  async stop(): Promise<void> {
    this.cancel();
    await settledWithin(this.settled);
  }

  /** Every event of every choice, in arrival order; the ledger sees each one even after the consumer stopped reading. */
  async *events(): AsyncGenerator<{ index: number; ev: GenerateEvent }> {
    const queue: { index: number; ev?: GenerateEvent; error?: unknown; end?: boolean }[] = [];
    let wake: (() => void) | null = null;
    const push = (x: (typeof queue)[number]) => {
      queue.push(x);
      wake?.();
    };
    this.settled = Promise.all(this.started.map((s) => this.pump(s, push)));
    let open = this.started.length;
    while (open > 0) {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      wake = null;
      const x = queue.shift()!;
      if (x.end) open--;
      // an engine that fails mid-generation (its worker died) is the engine's state: a 503, not a bare 500
      else if (x.error) throw rejectionError(x.error);
      else yield { index: x.index, ev: x.ev! };
    }
  }

  private async pump(s: Started, push: (x: { index: number; ev?: GenerateEvent; error?: unknown; end?: boolean }) => void) {
    this.ticket.event(s.index, s.first);
    push({ index: s.index, ev: s.first });
    if (s.first.finish) return push({ index: s.index, end: true });
    try {
      for (;;) {
        const r = await s.it.next();
        if (r.done) break;
        this.ticket.event(s.index, r.value);
        push({ index: s.index, ev: r.value });
        if (r.value.finish) break;
      }
    } catch (error) {
      this.ticket.broken(s.index);
      push({ index: s.index, error });
    }
    push({ index: s.index, end: true });
  }

  /** Logs the finished request and returns its usage (the token metrics are counted by the ledger, for every ending). */
  record(finals: GenerateEvent[], texts: string[]): Usage {
    const promptsOnce = this.prep.prompts.reduce((s, p) => s + p.ids.length, 0);
    const usage = usageOf(finals, promptsOnce, this.prep.lambda, this.prep.jobs[0]?.mix);
    const { log, stream, prompt } = this.runLog;
    log.info(
      {
        model: this.model.config.id,
        lambda: this.prep.lambda,
        choices: this.started.length,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        stream,
        ...(prompt === undefined ? {} : { prompt, completions: texts }),
      },
      'generation done',
    );
    return usage;
  }

  /**
   * Reads every choice to its end and returns the final events; a failed choice fails the whole request: the others
   * are stopped (see the top of this file) before the error is thrown.
   */
  async collect(onEvent: (index: number, ev: GenerateEvent) => void): Promise<GenerateEvent[]> {
    const finals: GenerateEvent[] = [];
    let failure: unknown = null;
    try {
      for await (const { index, ev } of this.events()) {
        onEvent(index, ev);
        if (ev.finish) {
          if (ev.finish === 'error' || ev.finish === 'cancelled') {
            failure = failureOf(ev);
            break;
          }
          finals[index] = ev;
        }
      }
    } catch (err) {
      failure = err; // the engine failed under the request (events() made it a 503), or a bug (the app's 500)
    }
    if (failure === null) return finals;
    await this.stop();
    throw failure;
  }
}
