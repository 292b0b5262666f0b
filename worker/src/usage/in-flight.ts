/**
 * Usage rows of requests sent to backends (migration 0003): in flight (status 0) from their dispatch, completed
 * when they end — both written by the usage queue's consumer (usage-queue.ts). An edge that dies in between leaves
 * its rows in flight; {@link reconcileInFlight} completes them from the backends' ledgers (run by the consumer after
 * its batches, at most every few seconds per isolate, and by the cron trigger).
 */
import type { Usage } from '../../../shared/src/responses.ts';
import type { EdgeConfig } from '../config.ts';
import { adapterColumns, adapterUsageOf } from './adapter-usage.ts';
import { lookUpLedger, type LedgerRecord } from './backend-ledger.ts';

/** Where a row's token counts came from (see migration 0003). */
export type UsageSource = 'backend' | 'ledger' | 'relayed' | 'reconciled' | 'lost' | 'none';

/** A usage row as written: any columns of `usage` (names as in the table), booleans stored as 0/1. */
export type UsageRowValues = Record<string, string | number | boolean | null> & { dispatch_id: string };

/** Status of a row whose request is still in flight. */
export const IN_FLIGHT = 0;
/** Status of a row whose request no backend knows any more and whose edge died: its tokens are lost. */
export const LOST_STATUS = 520;

const TOKEN_COLUMNS = [
  'prompt_tokens',
  'completion_tokens',
  'aligned_prompt_tokens',
  'aligned_completion_tokens',
  'reference_prompt_tokens',
  'reference_completion_tokens',
] as const;

/** Rows older than this are looked at by the reconciliation (younger ones likely have a live edge). */
const RECONCILE_AFTER_MS = 5_000;
/** Past the backends' ledger TTL (15 min) a row nobody knows is lost. */
const LOST_AFTER_MS = 20 * 60_000;
/** Least time between two reconciliations of one isolate. */
const RECONCILE_EVERY_MS = 5_000;
const RECONCILE_BATCH = 25;

function tokenValues(u: Usage): number[] {
  const b = u.realign?.branches;
  return [
    u.prompt_tokens,
    u.completion_tokens,
    b?.aligned.prompt_tokens ?? 0,
    b?.aligned.completion_tokens ?? 0,
    b?.reference.prompt_tokens ?? 0,
    b?.reference.completion_tokens ?? 0,
  ];
}

const STATUS_OF: Record<Exclude<LedgerRecord['state'], 'running'>, number> = { completed: 200, cancelled: 499, failed: 500 };

let lastRun = 0;

/**
 * Completes rows left in flight by an edge that died: each is looked up on every configured backend; the one that
 * ran it gives its final count (status as the backend saw the ending: 200, 499 cancelled, 500 failed). Rows still
 * running stay; rows no backend knows after {@link LOST_AFTER_MS} become {@link LOST_STATUS} with 0 tokens. Only
 * rows still in flight are touched, so a live edge's own final write always wins. At most once per
 * {@link RECONCILE_EVERY_MS} per isolate; `now` for tests.
 */
export async function reconcileInFlight(db: D1Database, config: EdgeConfig, now = Date.now(), force = false): Promise<number> {
  if (!force && now - lastRun < RECONCILE_EVERY_MS) return 0;
  lastRun = now;
  const rows = (
    await db
      .prepare(
        `SELECT dispatch_id, created_at FROM usage WHERE status = ${IN_FLIGHT} AND created_at < ? AND dispatch_id IS NOT NULL ORDER BY created_at LIMIT ${RECONCILE_BATCH}`,
      )
      .bind(now - RECONCILE_AFTER_MS)
      .all<{ dispatch_id: string; created_at: number }>()
  ).results;
  let done = 0;
  for (const row of rows) {
    const answers = await Promise.all(config.backends.map((b) => lookUpLedger(b, row.dispatch_id, config.hmacSecret)));
    const ended = answers.filter((a): a is LedgerRecord => typeof a === 'object' && a.state !== 'running');
    if (answers.some((a) => typeof a === 'object' && a.state === 'running')) continue;
    let status: number;
    let tokens: number[];
    let source: UsageSource;
    let adapters = adapterColumns(undefined);
    if (ended.length > 0) {
      status = STATUS_OF[ended.at(-1)!.state as keyof typeof STATUS_OF];
      tokens = ended.map((r) => tokenValues(r.usage)).reduce((a, b) => a.map((x, i) => x + b[i]!));
      adapters = adapterColumns(adapterUsageOf(ended.map((r) => r.usage)));
      source = 'reconciled';
    } else if (answers.every((a) => a === 'unknown') && now - row.created_at > LOST_AFTER_MS) {
      status = LOST_STATUS;
      tokens = TOKEN_COLUMNS.map(() => 0);
      source = 'lost';
    } else continue;
    await db
      .prepare(
        `UPDATE usage SET status = ?, ${TOKEN_COLUMNS.map((c) => `${c} = ?`).join(', ')}, mix = ?, adapter_tokens = ?, usage_source = ?, updated_at = ? WHERE dispatch_id = ? AND status = ${IN_FLIGHT}`,
      )
      .bind(status, ...tokens, adapters.mix, adapters.adapter_tokens, source, now, row.dispatch_id)
      .run();
    done++;
  }
  return done;
}
