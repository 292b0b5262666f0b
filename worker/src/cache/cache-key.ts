/**
 * Cache keys: the tenant's generation (not its id: a tenant created again under a deleted one's id must not be
 * served its answers), the endpoint and a SHA-256 of the resolved request in canonical form (sorted keys).
 * The resolved request already holds the model, the resolved λ and the adapter or mix it runs on (a preset's
 * included; a mix's names in sorted order, so the same mix in another order is the same entry); fields that do
 * not change the output (`stream`, `stream_options`, `user`) are left out, so a streamed request can be served
 * from a stored non-streamed answer and vice versa.
 */
import type { RequestKind } from '../../../shared/src/parse-request.ts';
import { sha256Hex } from '../../../shared/src/signing.ts';

const IGNORED = new Set(['stream', 'stream_options', 'user']);

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The KV key for a resolved request of the tenant generation `tenantGeneration`. */
export async function cacheKey(tenantGeneration: string, kind: RequestKind, resolved: object): Promise<string> {
  const relevant = Object.fromEntries(Object.entries(resolved).filter(([k]) => !IGNORED.has(k)));
  return `resp:v2:${tenantGeneration}:${kind}:${await sha256Hex(canonicalJson(relevant))}`;
}
