/**
 * The backend's own count of each generation request, kept for a while after it ended, keyed by the dispatch id
 * the edge sends (`x-realign-dispatch-id`). A request that ended early — its client went away, the edge aborted
 * it, the edge itself died — never got its usage to the edge in the answer; the edge asks for it here afterwards
 * (`GET /ledger/:dispatchId`, signed like every edge request). Every token the engine emitted for the request is
 * counted, including those generated after the client left and before the cancellation reached the engine.
 *
 * Bounded: entries expire `ttlMs` after their request ended, and past `maxEntries` the oldest ended ones go first.
 */
import type { Context } from 'hono';
import { notFound } from '../../../shared/src/errors.ts';
import { HEADERS } from '../../../shared/src/headers.ts';
import type { Usage } from '../../../shared/src/responses.ts';
import type { GenerateEvent } from '../engine/protocol.ts';
import { branchesFor, type BranchNeeds } from '../engine/rows.ts';
import type { BackendEnv } from './http-types.ts';
import type { BackendMetrics } from './metrics.ts';

/** How a ledgered request ended (`running` while it has not). */
export type LedgerState = 'running' | 'completed' | 'cancelled' | 'failed';

/** What `GET /ledger/:id` answers. */
export interface LedgerRecord {
  object: 'usage.ledger';
  dispatch_id: string;
  model: string;
  state: LedgerState;
  /** tokens generated so far (final once `state` is not `running`), per branch as computed */
  usage: Usage;
  started_at: number;
  ended_at: number | null;
}

/** Feeds one request's events into the ledger (see {@link UsageLedger.open}). */
export interface LedgerTicket {
  /** Every event of choice `index`, in order, the final one included. */
  event(index: number, ev: GenerateEvent): void;
  /** Choice `index` ended without a final event (its engine failed). */
  broken(index: number): void;
}

/** The syntax of a dispatch id the edge sends. */
export const DISPATCH_ID = /^[A-Za-z0-9_-]{8,64}$/;

/** The request header carrying it. */
export const DISPATCH_HEADER = HEADERS.dispatchId;

interface Entry {
  record: LedgerRecord;
  /** per choice: prompt length, tokens generated, ended */
  choices: { prompt: number; generated: number; ended: boolean; finish: string | null }[];
  needs: BranchNeeds;
  /** a request with a mix: the mix (its adapters with λ ≠ 0 each ran a branch) */
  mix?: Record<string, number>;
}

/** The branches a mix runs: each adapter with λ ≠ 0, and the reference unless it is one adapter at λ = 1. */
function mixNeeds(mix: Record<string, number>): BranchNeeds {
  const used = Object.entries(mix).filter(([, l]) => l !== 0);
  return { aligned: used.length > 0, reference: !(used.length === 1 && used[0][1] === 1), adapters: used.map(([n]) => n) };
}

/** Options of the ledger. */
export interface LedgerOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/** Usage of one ledgered request from its choices' counts (as the engine computes it for a finished one). */
function usageOf(entry: Entry, promptsOnce: number): Usage {
  const branches = { aligned: { prompt_tokens: 0, completion_tokens: 0 }, reference: { prompt_tokens: 0, completion_tokens: 0 } };
  let completion = 0;
  for (const ch of entry.choices) {
    completion += ch.generated;
    for (const b of ['aligned', 'reference'] as const) {
      if (!entry.needs[b]) continue;
      branches[b].prompt_tokens += ch.prompt;
      branches[b].completion_tokens += ch.generated;
    }
  }
  const perAdapter = entry.mix
    ? {
        mix: entry.mix,
        adapters: Object.fromEntries((entry.needs.adapters ?? []).map((a) => [a, { ...branches.aligned }])),
      }
    : {};
  return {
    prompt_tokens: promptsOnce,
    completion_tokens: completion,
    total_tokens: promptsOnce + completion,
    realign: { lambda: entry.record.usage.realign!.lambda, branches, ...perAdapter },
  };
}

/** The ledger of one backend process. */
export class UsageLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private opened = 0;

  constructor(
    private readonly metrics: BackendMetrics | null,
    opts: LedgerOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 15 * 60_000;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Starts the entry of request `dispatchId` of `model` (mode, for the branches it runs): one prompt length per
   * choice, each prompt counted once in `promptsOnce`. A second request with the same id replaces the first.
   */
  open(
    dispatchId: string,
    model: { id: string; mode: 'single' | 'inra' | 'fusion' },
    lambda: number,
    choicePrompts: number[],
    promptsOnce: number,
    mix?: Record<string, number>,
  ): LedgerTicket {
    this.evict();
    const entry: Entry = {
      record: this.runningRecord(dispatchId, model.id, lambda, promptsOnce),
      choices: choicePrompts.map((prompt) => ({ prompt, generated: 0, ended: false, finish: null })),
      needs: mix ? mixNeeds(mix) : branchesFor(model.mode, [lambda]),
      ...(mix ? { mix } : {}),
    };
    this.entries.delete(dispatchId);
    this.entries.set(dispatchId, entry);
    const settle = () => {
      entry.record.usage = usageOf(entry, promptsOnce);
      if (!entry.choices.every((c) => c.ended) || entry.record.state !== 'running') return;
      const finishes = entry.choices.map((c) => c.finish);
      entry.record.state =
        finishes.includes('error') || finishes.includes(null)
          ? 'failed'
          : finishes.includes('cancelled')
            ? 'cancelled'
            : 'completed';
      entry.record.ended_at = this.now();
      this.count(entry);
    };
    return {
      event: (index, ev) => {
        const ch = entry.choices[index];
        if (!ch || ch.ended) return;
        ch.generated += ev.tokens.length;
        if (ev.finish) {
          ch.ended = true;
          ch.finish = ev.finish;
        }
        settle();
      },
      broken: (index) => {
        const ch = entry.choices[index];
        if (!ch || ch.ended) return;
        ch.ended = true;
        settle();
      },
    };
  }

  /** The record of a request that has just started: its prompts counted, nothing generated yet. */
  private runningRecord(dispatchId: string, model: string, lambda: number, promptsOnce: number): LedgerRecord {
    const none = () => ({ prompt_tokens: 0, completion_tokens: 0 });
    return {
      object: 'usage.ledger',
      dispatch_id: dispatchId,
      model,
      state: 'running',
      usage: {
        prompt_tokens: promptsOnce,
        completion_tokens: 0,
        total_tokens: promptsOnce,
        realign: { lambda, branches: { aligned: none(), reference: none() } },
      },
      started_at: this.now(),
      ended_at: null,
    };
  }

  /** The record of `dispatchId`, or null when unknown (never sent here, refused before it ran, or expired). */
  get(dispatchId: string): LedgerRecord | null {
    return this.entries.get(dispatchId)?.record ?? null;
  }

  /** Entries held (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /** The token counters of the metrics, for every request however it ended. */
  private count(entry: Entry): void {
    if (!this.metrics) return;
    const b = entry.record.usage.realign!.branches;
    for (const branch of ['aligned', 'reference'] as const) {
      this.metrics.promptTokens.inc({ branch, model: entry.record.model }, b[branch].prompt_tokens);
      this.metrics.completionTokens.inc({ branch, model: entry.record.model }, b[branch].completion_tokens);
    }
  }

  /** Drops expired entries, scanning once every 256 requests (or when full) so that a request costs O(1) on average. */
  private evict(): void {
    if (++this.opened % 256 !== 0 && this.entries.size < this.maxEntries) return;
    const now = this.now();
    for (const [id, e] of this.entries) {
      if (e.record.ended_at !== null && now - e.record.ended_at > this.ttlMs) this.entries.delete(id);
    }
    // past the bound, the oldest ended entries go first (running ones are bounded by the engine's queue)
    if (this.entries.size < this.maxEntries) return;
    for (const [id, e] of this.entries) {
      if (this.entries.size < this.maxEntries) break;
      if (e.record.ended_at !== null) this.entries.delete(id);
    }
  }
}

/** `GET /ledger/:dispatchId`: one request's record (404 when unknown). */
export function ledgerRoute(ledger: UsageLedger) {
  return function ledgerHandler(c: Context<BackendEnv>): Response {
    const id = c.req.param('dispatchId') ?? '';
    const record = DISPATCH_ID.test(id) ? ledger.get(id) : null;
    if (record === null)
      throw notFound(
        `no generation with dispatch id \`${id.slice(0, 64)}\` is known here (never sent here, refused before it ran, or expired)`,
        'unknown_dispatch',
      );
    return c.json(record);
  };
}
