/**
 * D1 access to usage: one row per answered request (written by the usage queue's consumer, usage/usage-queue.ts),
 * and the aggregated report of the admin API.
 */

/** The token columns of a usage row (and sums of them in the report). Per-branch counts come from `usage.realign`. */
export interface UsageTokens {
  prompt_tokens: number;
  completion_tokens: number;
  aligned_prompt_tokens: number;
  aligned_completion_tokens: number;
  reference_prompt_tokens: number;
  reference_completion_tokens: number;
}

/** One request's usage. */
export interface UsageRecord extends UsageTokens {
  /** The edge's own id of the request. */
  request_id: string;
  /** The id the client sent, if any (not trusted: two requests may carry the same one). */
  client_request_id: string | null;
  tenant_id: string;
  /** The tenant generation the request belonged to (see TenantRow.generation). */
  tenant_generation: string;
  key_id: string;
  model_id: string;
  endpoint: string;
  status: number;
  stream: boolean;
  cached: boolean;
  lambda: number | null;
  preset: string | null;
  created_at: number;
}

/** How the report groups rows. */
export type UsageGroup = 'tenant' | 'key' | 'model' | 'day';

/** Filters and grouping of a report; times in Unix ms, `until` exclusive. */
export interface UsageQuery {
  tenantId?: string;
  /** Only rows of this tenant generation (a tenant id can be deleted and created again). */
  tenantGeneration?: string;
  keyId?: string;
  since?: number;
  until?: number;
  groupBy: UsageGroup;
}

/** One line of the report: request counts and token sums of one group. */
export interface UsageReportLine extends UsageTokens {
  group: string;
  requests: number;
  cached_requests: number;
  failed_requests: number;
}

const GROUP_EXPR: Record<UsageGroup, string> = {
  tenant: 'tenant_id',
  key: 'key_id',
  model: 'model_id',
  day: "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
};

/** Sums usage per group. */
export async function usageReport(db: D1Database, q: UsageQuery): Promise<UsageReportLine[]> {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const filters: [string, string | number | undefined][] = [
    ['tenant_id = ?', q.tenantId],
    ['tenant_generation = ?', q.tenantGeneration],
    ['key_id = ?', q.keyId],
    ['created_at >= ?', q.since],
    ['created_at < ?', q.until],
  ];
  for (const [clause, value] of filters) {
    if (value === undefined) continue;
    where.push(clause);
    args.push(value);
  }
  const g = GROUP_EXPR[q.groupBy];
  const sql = `SELECT ${g} AS "group", COUNT(*) AS requests, SUM(cached) AS cached_requests, SUM(status >= 400) AS failed_requests,
      SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
      SUM(aligned_prompt_tokens) AS aligned_prompt_tokens, SUM(aligned_completion_tokens) AS aligned_completion_tokens,
      SUM(reference_prompt_tokens) AS reference_prompt_tokens, SUM(reference_completion_tokens) AS reference_completion_tokens
    FROM usage ${where.length ? 'WHERE ' + where.join(' AND ') : ''} GROUP BY ${g} ORDER BY ${g}`;
  return (
    await db
      .prepare(sql)
      .bind(...args)
      .all<UsageReportLine>()
  ).results;
}
