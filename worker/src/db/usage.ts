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
  /** The mix a request on named adapters ran, as canonical text (`name=λ,…`), or null (migration 0007). */
  mix: string | null;
  /** JSON `{"name": {"prompt_tokens", "completion_tokens"}}`: each adapter branch's tokens, or null. */
  adapter_tokens: string | null;
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

/** Tokens of one adapter's branch. */
export interface AdapterBranchTokens {
  prompt_tokens: number;
  completion_tokens: number;
}

/** One line of the report: request counts and token sums of one group. */
export interface UsageReportLine extends UsageTokens {
  group: string;
  requests: number;
  cached_requests: number;
  failed_requests: number;
  /** Branch tokens per named adapter, summed over the group's rows that report them ({} when none do). */
  adapters: Record<string, AdapterBranchTokens>;
}

const GROUP_EXPR: Record<UsageGroup, string> = {
  tenant: 'tenant_id',
  key: 'key_id',
  model: 'model_id',
  day: "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')",
};

/** Sums usage per group, with each named adapter's branch tokens. */
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
  const filter = where.length ? 'WHERE ' + where.join(' AND ') : '';
  const sql = `SELECT ${g} AS "group", COUNT(*) AS requests, SUM(cached) AS cached_requests, SUM(status >= 400) AS failed_requests,
      SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
      SUM(aligned_prompt_tokens) AS aligned_prompt_tokens, SUM(aligned_completion_tokens) AS aligned_completion_tokens,
      SUM(reference_prompt_tokens) AS reference_prompt_tokens, SUM(reference_completion_tokens) AS reference_completion_tokens
    FROM usage ${filter} GROUP BY ${g} ORDER BY ${g}`;
  // one row per (group, adapter) over the rows' adapter_tokens objects (json_each of NULL yields nothing)
  const perAdapter = `SELECT ${g} AS "group", a.key AS adapter,
      SUM(json_extract(a.value, '$.prompt_tokens')) AS prompt_tokens, SUM(json_extract(a.value, '$.completion_tokens')) AS completion_tokens
    FROM usage, json_each(usage.adapter_tokens) AS a ${filter} GROUP BY ${g}, a.key`;
  const [lines, adapters] = await db.batch([db.prepare(sql).bind(...args), db.prepare(perAdapter).bind(...args)]);
  const byGroup = new Map<string, Record<string, AdapterBranchTokens>>();
  for (const r of adapters!.results as (AdapterBranchTokens & { group: string; adapter: string })[]) {
    const m = byGroup.get(r.group) ?? {};
    m[r.adapter] = { prompt_tokens: r.prompt_tokens, completion_tokens: r.completion_tokens };
    byGroup.set(r.group, m);
  }
  return (lines!.results as Omit<UsageReportLine, 'adapters'>[]).map((l) => ({ ...l, adapters: byGroup.get(l.group) ?? {} }));
}
