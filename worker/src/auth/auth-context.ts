/** Who is calling: the API key, its tenant, and the limits and cache settings that follow from them. */
export interface AuthContext {
  keyId: string;
  tenantId: string;
  /** The tenant's generation (see TenantRow.generation): the name of its rate limiter and part of its cache keys. */
  tenantGeneration: string;
  /** The end user the key is bound to, or null when the key may act as any user of its tenant. */
  boundUser: string | null;
  tenantRequestsPerMinute: number;
  tenantTokensPerMinute: number;
  /** Per-key limits; null = only the tenant's limits apply. */
  keyRequestsPerMinute: number | null;
  keyTokensPerMinute: number | null;
  /** 0 = the tenant's responses are never cached. */
  cacheTtlSeconds: number;
  /** When the rate limiter (its Durable Object) cannot be reached: true = admit the request, false = 503 (the default). */
  rateLimitFailOpen: boolean;
}
