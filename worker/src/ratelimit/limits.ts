/** Types shared by the rate limiter Durable Object and its callers. */

/** The limits of one scope (the tenant, or one key). */
export interface ScopeLimits {
  /** `tenant` or `key:<id>`. */
  scope: string;
  requestsPerMinute: number;
  tokensPerMinute: number;
}

/** One dimension (requests or tokens) as reported in headers: the scope with the least room. */
export interface DimensionReport {
  limit: number;
  remaining: number;
  /** Milliseconds until that bucket is full. */
  resetMs: number;
}

/** The answer to an acquire call. */
export interface AcquireResult {
  allowed: boolean;
  /** When not allowed: milliseconds until every bucket has room for this request. */
  retryAfterMs: number;
  /** When not allowed: the dimension whose bucket needs the longest wait. */
  limitedBy: 'requests' | 'tokens' | null;
  /** Set when the token cost is larger than a scope's whole bucket: refused without charging anything. */
  oversized: { scope: string; tokensPerMinute: number } | null;
  requests: DimensionReport;
  tokens: DimensionReport;
  /** Set when the limiter could not be reached and the tenant fails open: nothing was charged or measured. */
  unmetered?: boolean;
}
