/**
 * Usage through Cloudflare Queues: the request path sends one event per usage fact (`ctx.waitUntil`, never
 * awaited by the answer) and the queue consumer writes a whole batch to D1 with **one statement**, idempotent by the
 * row's `dispatch_id` (a request sent to backends: its dispatch id; a cached answer: its request id):
 *   - an in-flight event (status 0) inserts the row if it is not there, and never changes a row;
 *   - a final event inserts the row, or completes a row still in flight; a row already final is left alone.
 * So a message delivered twice, a batch retried after its write committed, or the in-flight and final events of one
 * request arriving in either order (or in one batch) all leave exactly one row with the final counts.
 *
 * The rate limiter's settlement (real − estimated tokens) travels with the final event and is applied by the
 * consumer with one Durable Object call per tenant generation and batch — only for the rows this batch's statement
 * actually completed (its `RETURNING`), so a redelivered event never settles twice.
 *
 * A queue that refuses a send (unavailable, over its throughput) makes the producer apply the event itself (the same
 * statement and settlement, in `waitUntil`): usage is never dropped for a full queue.
 */
import type { ScopeLimits } from '../ratelimit/limits.ts';
import { settleMany, type Settlement } from '../ratelimit/admit.ts';

/** Every column a usage event sets (migrations 0001–0003, 0007). */
export const USAGE_COLUMNS = [
  'request_id',
  'client_request_id',
  'tenant_id',
  'tenant_generation',
  'key_id',
  'model_id',
  'endpoint',
  'status',
  'stream',
  'cached',
  'lambda',
  'preset',
  'prompt_tokens',
  'completion_tokens',
  'aligned_prompt_tokens',
  'aligned_completion_tokens',
  'reference_prompt_tokens',
  'reference_completion_tokens',
  'created_at',
  'dispatch_id',
  'usage_source',
  'updated_at',
  'mix',
  'adapter_tokens',
] as const;

/** Columns a final event writes over an in-flight row. */
const COMPLETED_COLUMNS = [
  'status',
  'prompt_tokens',
  'completion_tokens',
  'aligned_prompt_tokens',
  'aligned_completion_tokens',
  'reference_prompt_tokens',
  'reference_completion_tokens',
  'usage_source',
  'updated_at',
  'mix',
  'adapter_tokens',
] as const;

/** A usage row as an event carries it (booleans as 0/1). */
export type UsageEventRow = Record<(typeof USAGE_COLUMNS)[number], string | number | null> & {
  dispatch_id: string;
  request_id: string;
  status: number;
};

/** One message of the usage queue. */
export interface UsageEvent {
  v: 1;
  row: UsageEventRow;
  /** The rate-limit correction of a final event (null for in-flight events). */
  settle: { generation: string; scopes: ScopeLimits[]; delta: number } | null;
}

/** A row in the shape of {@link UsageEventRow} from any record of usage columns (missing ones null, booleans 0/1). */
export function eventRow(values: Record<string, string | number | boolean | null | undefined>): UsageEventRow {
  const row: Record<string, string | number | null> = {};
  for (const c of USAGE_COLUMNS) {
    const v = values[c];
    row[c] = typeof v === 'boolean' ? (v ? 1 : 0) : (v ?? null);
  }
  return row as UsageEventRow;
}

/** Columns without a default (NOT NULL): a message without them could never be written, so it is dropped, not retried. */
const REQUIRED_TEXT = ['dispatch_id', 'request_id', 'tenant_id', 'key_id', 'model_id', 'endpoint'] as const;
const REQUIRED_NUMBER = ['status', 'created_at'] as const;
/** Columns with a default (NOT NULL DEFAULT …) that a message may leave out. */
const DEFAULTS: Partial<Record<(typeof USAGE_COLUMNS)[number], string>> = {
  tenant_generation: "''",
  stream: '0',
  cached: '0',
  prompt_tokens: '0',
  completion_tokens: '0',
  aligned_prompt_tokens: '0',
  aligned_completion_tokens: '0',
  reference_prompt_tokens: '0',
  reference_completion_tokens: '0',
};

function isUsageEvent(v: unknown): v is UsageEvent {
  const e = v as Partial<UsageEvent> | null;
  if (typeof e !== 'object' || e === null || e.v !== 1 || typeof e.row !== 'object' || e.row === null) return false;
  const row = e.row;
  return REQUIRED_TEXT.every((c) => typeof row[c] === 'string') && REQUIRED_NUMBER.every((c) => typeof row[c] === 'number');
}

const extract = (c: (typeof USAGE_COLUMNS)[number]) =>
  DEFAULTS[c] === undefined ? `json_extract(value, '$.${c}')` : `COALESCE(json_extract(value, '$.${c}'), ${DEFAULTS[c]})`;

const UPSERT_SQL = `INSERT INTO usage (${USAGE_COLUMNS.join(', ')})
  SELECT ${USAGE_COLUMNS.map(extract).join(', ')} FROM json_each(?1) WHERE true
  ON CONFLICT (dispatch_id) DO UPDATE SET ${COMPLETED_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}
    WHERE usage.status = 0 AND excluded.status != 0
  RETURNING dispatch_id, status`;

/**
 * Writes `events` with one D1 statement (the batch is one JSON parameter: D1 allows 100 bound parameters, a batch
 * of 100 rows has 2,400 values). Returns the dispatch ids this statement made final (inserted final, or completed).
 */
export async function writeUsageEvents(db: D1Database, events: UsageEvent[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const rows = (
    await db
      .prepare(UPSERT_SQL)
      .bind(JSON.stringify(events.map((e) => e.row)))
      .all<{ dispatch_id: string; status: number }>()
  ).results;
  return new Set(rows.filter((r) => r.status !== 0).map((r) => r.dispatch_id));
}

/**
 * Writes `events` and settles the rate limiter for the rows they completed: one D1 statement, then one Durable
 * Object call per tenant generation. A failed write throws (the caller retries the whole batch); a failed
 * settlement is logged (the row is written; the estimate stays charged, as for a dead edge).
 */
export async function applyUsageEvents(env: Env, events: UsageEvent[]): Promise<void> {
  const completed = await writeUsageEvents(env.DB, events);
  const byGeneration = new Map<string, Settlement[]>();
  const settled = new Set<string>();
  for (const e of events) {
    const id = e.row.dispatch_id;
    if (e.settle === null || !completed.has(id) || settled.has(id)) continue;
    settled.add(id);
    const list = byGeneration.get(e.settle.generation) ?? [];
    list.push({ scopes: e.settle.scopes, delta: e.settle.delta });
    byGeneration.set(e.settle.generation, list);
  }
  const results = await Promise.allSettled([...byGeneration].map(([generation, list]) => settleMany(env, generation, list)));
  for (const r of results) if (r.status === 'rejected') logUsageFailure('settling the rate limiter for a usage batch', r.reason);
}

/**
 * Sends one event to the usage queue; when the queue refuses it, applies it directly (one D1 statement). For
 * `waitUntil`; never throws.
 */
export async function sendUsage(env: Env, event: UsageEvent): Promise<void> {
  try {
    await env.USAGE_QUEUE.send(event, { contentType: 'json' });
  } catch (queueError) {
    logUsageFailure('usage queue send (writing directly)', queueError, event.row.request_id);
    await applyUsageEvents(env, [event]).catch((e: unknown) => logUsageFailure('direct usage write', e, event.row.request_id));
  }
}

/**
 * Test hook of the consumer (worker/test/usage-queue.test.ts): called after a batch's write committed; answering
 * `retry` has the whole batch delivered again, as a consumer that died right after its write would.
 */
export const usageConsumerHooks: { afterWrite: ((batch: MessageBatch<unknown>) => 'retry' | void) | null } = { afterWrite: null };

/**
 * The queue consumer: writes the batch (one statement), settles the limiters, then completes rows that a dead
 * edge left in flight (at most every few seconds per isolate). A failed write throws, so the whole batch is
 * delivered again (up to `max_retries`, then to the dead-letter queue); malformed messages are logged and dropped.
 */
export async function consumeUsage(batch: MessageBatch<unknown>, env: Env, reconcile: () => Promise<void>): Promise<void> {
  const events: UsageEvent[] = [];
  for (const m of batch.messages) {
    if (isUsageEvent(m.body)) events.push(m.body);
    else console.error(JSON.stringify({ level: 'error', msg: 'usage: malformed queue message dropped', messageId: m.id }));
  }
  await applyUsageEvents(env, events);
  if (usageConsumerHooks.afterWrite?.(batch) === 'retry') return batch.retryAll();
  await reconcile().catch((e: unknown) => logUsageFailure('reconciling in-flight rows', e));
}

function logUsageFailure(what: string, error: unknown, requestId?: string): void {
  console.error(JSON.stringify({ level: 'error', msg: `usage: ${what} failed`, requestId, error: String(error) }));
}
