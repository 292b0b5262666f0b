/** Who is calling: the API key, its tenant, and the limits and cache settings that follow from them. */
export interface AuthContext {
  keyId: string;
  tenantId: string;
  tenantRequestsPerMinute: number;
  tenantTokensPerMinute: number;
  /** Per-key limits; null = only the tenant's limits apply. */
  keyRequestsPerMinute: number | null;
  keyTokensPerMinute: number | null;
  /** 0 = the tenant's responses are never cached. */
  cacheTtlSeconds: number;
}
