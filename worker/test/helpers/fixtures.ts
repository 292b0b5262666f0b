/** Test tenants made through the admin API: each test gets its own tenant, model grant and key. */
import { admin } from './http.ts';
import { uniqueTag } from './stub.ts';

/** A tenant ready to call /v1. */
export interface TestTenant {
  tenantId: string;
  /** The tenant's generation: its rate limiter's name and part of its cache keys. */
  generation: string;
  keyId: string;
  key: string;
  model: string;
}

/** Options of {@link makeTenant}. */
export interface TenantOptions {
  model?: string;
  modelDefaultLambda?: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  cacheTtlSeconds?: number;
  policy?: Record<string, unknown>;
  presets?: Record<string, { lambda: number; sampling?: Record<string, number>; model?: string }>;
}

/** Creates a tenant with one model (in the catalogue and granted), optional policy and presets, and a key. */
export async function makeTenant(o: TenantOptions = {}): Promise<TestTenant> {
  const tenantId = uniqueTag('tenant');
  const model = o.model ?? uniqueTag('model');
  const created = await admin<{ generation: string }>('POST', '/tenants', {
    id: tenantId,
    name: tenantId,
    requests_per_minute: o.requestsPerMinute ?? 1000,
    tokens_per_minute: o.tokensPerMinute ?? 1_000_000,
    cache_ttl_seconds: o.cacheTtlSeconds ?? 600,
  });
  await admin('PUT', `/models/${model}`, { default_lambda: o.modelDefaultLambda ?? 1 });
  await admin('PUT', `/tenants/${tenantId}/models/${model}`);
  if (o.policy) await admin('PUT', `/tenants/${tenantId}/policies/*`, o.policy);
  for (const [name, p] of Object.entries(o.presets ?? {})) await admin('PUT', `/tenants/${tenantId}/presets/${name}`, p);
  const key = await admin<{ id: string; key: string }>('POST', `/tenants/${tenantId}/keys`, { name: 'test' });
  return { tenantId, generation: created.generation, keyId: key.id, key: key.key, model };
}
