/**
 * The usage of one request sent to backends, for every way it can end. An in-flight event (status 0) is queued
 * when it is sent and a final event when it ends (usage-queue.ts; the consumer writes both idempotently), with the
 * tokens the backends generated for it:
 *   - the usage of the backend's answer, when the answer arrived whole;
 *   - else each backend's own count from its usage ledger (client hung up, stream broken, timeout, error);
 *   - else, for a backend that cannot answer (it died), the tokens the edge relayed from it.
 * Rows an edge could not complete (it died) are completed later by any edge from the ledgers (usage/in-flight.ts).
 */
import type { Usage } from '../../../shared/src/responses.ts';
import type { BackendConfig, EdgeConfig } from '../config.ts';
import { scopesOf } from '../ratelimit/admit.ts';
import { chargedTokens } from '../ratelimit/charge.ts';
import { addAdapterTokens } from './adapter-usage.ts';
import { finalLedger } from './backend-ledger.ts';
import type { UsageSource } from './in-flight.ts';
import { eventRow, sendUsage } from './usage-queue.ts';
import { usageRow, type UsageContext } from './usage-recorder.ts';

/** Tokens of one SSE event the edge relayed: one per choice that carries text or log-probabilities (one engine token each). */
export function relayedTokens(event: unknown): number {
  const choices = (event as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices)) return 0;
  let n = 0;
  for (const ch of choices as { text?: unknown; delta?: { content?: unknown }; logprobs?: unknown }[]) {
    const text = typeof ch?.text === 'string' ? ch.text : typeof ch?.delta?.content === 'string' ? ch.delta.content : '';
    if (text !== '' || (ch?.logprobs !== null && ch?.logprobs !== undefined)) n++;
  }
  return n;
}

function addUsage(a: Usage | null, b: Usage): Usage {
  if (a === null) return b;
  const branch = (x: Usage, k: 'aligned' | 'reference') => x.realign?.branches[k] ?? { prompt_tokens: 0, completion_tokens: 0 };
  const sum = (k: 'aligned' | 'reference') => ({
    prompt_tokens: branch(a, k).prompt_tokens + branch(b, k).prompt_tokens,
    completion_tokens: branch(a, k).completion_tokens + branch(b, k).completion_tokens,
  });
  const mix = a.realign?.mix ?? b.realign?.mix;
  const adapters = addAdapterTokens(a.realign?.adapters, b.realign?.adapters);
  return {
    prompt_tokens: a.prompt_tokens + b.prompt_tokens,
    completion_tokens: a.completion_tokens + b.completion_tokens,
    total_tokens: a.total_tokens + b.total_tokens,
    realign: {
      lambda: a.realign?.lambda ?? b.realign?.lambda ?? 0,
      branches: { aligned: sum('aligned'), reference: sum('reference') },
      ...(mix === undefined ? {} : { mix }),
      ...(adapters === undefined ? {} : { adapters }),
    },
  };
}

/** The usage of tokens relayed from a backend that can no longer say (no prompt count: the edge never learnt it). */
function relayedUsage(tokens: number, lambda: number | null): Usage {
  const on = { prompt_tokens: 0, completion_tokens: tokens };
  const off = { prompt_tokens: 0, completion_tokens: 0 };
  // the branches a λ runs (gpu-backend/src/engine/rows.ts): λ = 0 the reference only, λ = 1 the aligned only
  return {
    prompt_tokens: 0,
    completion_tokens: tokens,
    total_tokens: tokens,
    realign: {
      lambda: lambda ?? 1,
      branches: { aligned: lambda === 0 ? off : on, reference: lambda === 1 || lambda === null ? off : on },
    },
  };
}

/** One request's usage from dispatch to its end. */
export class DispatchUsage {
  /** The id the backends know this request by (`x-realign-dispatch-id`). */
  readonly dispatchId = crypto.randomUUID().replaceAll('-', '');
  /** Backends this request was sent to, in order (filled by routing/forward.ts). */
  readonly tried: BackendConfig[] = [];
  /** Tokens relayed to the client from the backend that answered (streams). */
  relayed = 0;
  private readonly ahead: Promise<void>;
  private readonly createdAt = Date.now();
  private ended = false;

  constructor(
    private readonly env: Env,
    private readonly ctx: UsageContext,
    private readonly config: EdgeConfig,
  ) {
    // not awaited by the answer: the in-flight event is queued while the request is forwarded
    this.ahead = sendUsage(env, { v: 1, row: this.row(0, null, null), settle: null });
  }

  /** Counts an SSE event relayed to the client. */
  relay(event: unknown): void {
    this.relayed += relayedTokens(event);
  }

  /**
   * Completes the row for an ending with `status`; `reported` is the usage in the backend's answer (null when the
   * answer did not arrive whole). For `waitUntil`; never throws.
   */
  async end(status: number, reported: Usage | null): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const { usage, source } = await this.settleCounts(reported, status >= 400 && status < 500 && status !== 499);
    const real = chargedTokens(this.ctx, status, usage, false);
    const settle = {
      generation: this.ctx.auth.tenantGeneration,
      scopes: scopesOf(this.ctx.auth),
      delta: real - this.ctx.estimatedTokens,
    };
    // the final event may overtake the in-flight one: the consumer's write is the same in either order
    await Promise.all([this.ahead, sendUsage(this.env, { v: 1, row: this.row(status, usage, source), settle })]);
  }

  private async settleCounts(reported: Usage | null, refused: boolean): Promise<{ usage: Usage | null; source: UsageSource }> {
    const answered = this.tried.at(-1);
    // a whole answer on the first backend: its usage is the count
    if (reported !== null && this.tried.length <= 1) return { usage: reported, source: 'backend' };
    // the answering backend's count is in its answer, or it refused the request (4xx) and generated nothing; a
    // backend asked twice (a preset's max_tokens sent again) keeps one ledger entry per dispatch id, the last one
    const others = reported !== null || refused ? this.tried.filter((b) => b.url !== answered?.url) : this.tried;
    if (others.length === 0) return { usage: reported, source: 'backend' };
    const unique = [...new Map(others.map((b) => [b.url, b])).values()];
    const answers = await Promise.all(unique.map((b) => finalLedger(b, this.dispatchId, this.config.hmacSecret)));
    let usage: Usage | null = reported;
    let source: UsageSource = reported !== null || refused ? 'backend' : 'ledger';
    answers.forEach((a, i) => {
      if (typeof a === 'object') usage = addUsage(usage, a.usage);
      else if (a === 'unreachable' && unique[i]!.url === answered?.url && this.relayed > 0) {
        usage = addUsage(usage, relayedUsage(this.relayed, this.ctx.lambda));
        source = 'relayed';
      }
    });
    return { usage, source: usage === null ? 'none' : source };
  }

  private row(status: number, usage: Usage | null, source: UsageSource | null) {
    return eventRow({
      ...usageRow(this.ctx, status, usage, false),
      created_at: this.createdAt,
      dispatch_id: this.dispatchId,
      usage_source: source,
      updated_at: Date.now(),
    });
  }
}
