/**
 * Usage rows of dispatched requests in the local D1 (src/usage/in-flight.ts, written by the usage queue's consumer,
 * src/usage/usage-queue.ts): written in flight before the request is sent, completed once whatever the order of the
 * two writes (in separate batches here; within one batch in usage-queue.test.ts), and rows of a dead edge that no
 * backend knows are marked lost after the ledgers' lifetime. Completing rows from live backends' ledgers is checked end to end in
 * test/e2e/usage-endings.test.ts.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { EdgeConfig } from '../src/config.ts';
import { LOST_STATUS, reconcileInFlight, type UsageRowValues } from '../src/usage/in-flight.ts';
import { eventRow, writeUsageEvents } from '../src/usage/usage-queue.ts';

/** One consumer batch of a single row. */
const write = (row: UsageRowValues) => writeUsageEvents(env.DB, [{ v: 1, row: eventRow(row), settle: null }]);
const writeInFlight = (_db: D1Database, row: UsageRowValues) => write({ ...row, status: 0 });
const completeRow = (_db: D1Database, row: UsageRowValues) => write(row);

function row(dispatchId: string, status: number, completion: number, createdAt = Date.now()): UsageRowValues {
  return {
    dispatch_id: dispatchId,
    request_id: `req_${dispatchId}`,
    tenant_id: 'in-flight-test',
    key_id: 'key_x',
    model_id: 'm',
    endpoint: '/v1/completions',
    status,
    stream: true,
    cached: false,
    prompt_tokens: completion === 0 ? 0 : 3,
    completion_tokens: completion,
    aligned_prompt_tokens: 0,
    aligned_completion_tokens: 0,
    reference_prompt_tokens: 0,
    reference_completion_tokens: 0,
    usage_source: status === 0 ? null : 'ledger',
    created_at: createdAt,
    updated_at: createdAt,
  };
}

const stored = (dispatchId: string) =>
  env.DB.prepare('SELECT status, completion_tokens, prompt_tokens, usage_source FROM usage WHERE dispatch_id = ?')
    .bind(dispatchId)
    .all();

describe('usage rows of dispatched requests', () => {
  it('the in-flight row is completed in place; a final row written first is not overwritten by a late in-flight write', async () => {
    const a = crypto.randomUUID();
    await writeInFlight(env.DB, row(a, 0, 0));
    expect((await stored(a)).results).toEqual([{ status: 0, completion_tokens: 0, prompt_tokens: 0, usage_source: null }]);
    await completeRow(env.DB, row(a, 499, 17));
    expect((await stored(a)).results).toEqual([{ status: 499, completion_tokens: 17, prompt_tokens: 3, usage_source: 'ledger' }]);

    const b = crypto.randomUUID();
    await completeRow(env.DB, row(b, 200, 5));
    await writeInFlight(env.DB, row(b, 0, 0));
    expect((await stored(b)).results).toEqual([{ status: 200, completion_tokens: 5, prompt_tokens: 3, usage_source: 'ledger' }]);
  });

  it('a row left in flight that no backend knows becomes lost only after the ledgers forgot it; completed rows are never touched', async () => {
    const config = { backends: [], hmacSecret: 'x' } as unknown as EdgeConfig;
    const now = Date.now();
    const young = crypto.randomUUID();
    const old = crypto.randomUUID();
    const done = crypto.randomUUID();
    await writeInFlight(env.DB, row(young, 0, 0, now - 60_000));
    await writeInFlight(env.DB, row(old, 0, 0, now - 30 * 60_000));
    await completeRow(env.DB, row(done, 200, 9, now - 40 * 60_000));
    await reconcileInFlight(env.DB, config, now, true);
    expect((await stored(young)).results[0]).toMatchObject({ status: 0 });
    expect((await stored(old)).results[0]).toEqual({
      status: LOST_STATUS,
      completion_tokens: 0,
      prompt_tokens: 0,
      usage_source: 'lost',
    });
    expect((await stored(done)).results[0]).toMatchObject({ status: 200, completion_tokens: 9 });
  });
});
