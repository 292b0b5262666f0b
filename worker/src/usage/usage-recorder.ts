/**
 * The usage row of a request answered from the cache: one final event on the usage queue (usage-queue.ts), sent
 * after the response without delaying it (`ctx.waitUntil`), keyed by the request id. The token charge of the rate
 * limiter is corrected by the consumer with it (real count − estimate).
 */
import type { Usage } from '../../../shared/src/responses.ts';
import type { AuthContext } from '../auth/auth-context.ts';
import type { UsageRecord } from '../db/usage.ts';
import { scopesOf } from '../ratelimit/admit.ts';
import { chargedTokens, type ChargeBasis } from '../ratelimit/charge.ts';
import { adapterColumns } from './adapter-usage.ts';
import { eventRow, sendUsage } from './usage-queue.ts';

/** What is known about a request before its answer (with the parts of its estimate, see ratelimit/charge.ts). */
export interface UsageContext extends ChargeBasis {
  /** The edge's own id of the request (the usage row's id). */
  requestId: string;
  /** The id the client sent (x-client-request-id or x-request-id), kept beside it; null when none. */
  clientRequestId: string | null;
  auth: AuthContext;
  model: string;
  endpoint: string;
  stream: boolean;
  lambda: number | null;
  preset: string | null;
}

/** The row for a request that ended with `status` and `usage` (null when the backend reported none). */
export function usageRow(ctx: UsageContext, status: number, usage: Usage | null, cached: boolean): UsageRecord {
  const b = usage?.realign?.branches;
  return {
    request_id: ctx.requestId,
    client_request_id: ctx.clientRequestId,
    tenant_id: ctx.auth.tenantId,
    tenant_generation: ctx.auth.tenantGeneration,
    key_id: ctx.auth.keyId,
    model_id: ctx.model,
    endpoint: ctx.endpoint,
    status,
    stream: ctx.stream,
    cached,
    lambda: ctx.lambda,
    preset: ctx.preset,
    prompt_tokens: usage?.prompt_tokens ?? 0,
    completion_tokens: usage?.completion_tokens ?? 0,
    aligned_prompt_tokens: b?.aligned.prompt_tokens ?? 0,
    aligned_completion_tokens: b?.aligned.completion_tokens ?? 0,
    reference_prompt_tokens: b?.reference.prompt_tokens ?? 0,
    reference_completion_tokens: b?.reference.completion_tokens ?? 0,
    ...adapterColumns(usage?.realign),
    created_at: Date.now(),
  };
}

/**
 * Queues the row and its settlement. Never throws: usage must not break a response that was already sent (a queue
 * that refuses the event makes it be written directly). A cached answer costs no backend tokens, so its estimate is
 * refunded.
 */
export async function recordUsage(
  env: Env,
  ctx: UsageContext,
  status: number,
  usage: Usage | null,
  cached: boolean,
): Promise<void> {
  // what each ending costs (a hang-up keeps its estimate, failures the client did not cause are refunded): charge.ts
  const real = chargedTokens(ctx, status, usage, cached);
  const row = eventRow({ ...usageRow(ctx, status, usage, cached), dispatch_id: ctx.requestId, updated_at: Date.now() });
  await sendUsage(env, {
    v: 1,
    row,
    settle: { generation: ctx.auth.tenantGeneration, scopes: scopesOf(ctx.auth), delta: real - ctx.estimatedTokens },
  });
}
