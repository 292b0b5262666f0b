/** The response cache in KV: finished completions stored as JSON under tenant-scoped keys, with a TTL. */
import type { ChatCompletion, TextCompletion } from '../../../shared/src/responses.ts';

/** A stored answer. */
export interface CachedResponse {
  kind: 'chat' | 'completions';
  body: ChatCompletion | TextCompletion;
  storedAt: number;
}

/** KV refuses TTLs under 60 s. */
export const MIN_TTL_SECONDS = 60;

/** The stored answer for `key`, or null (also for an entry that no longer parses). */
export async function getCached(kv: KVNamespace, key: string): Promise<CachedResponse | null> {
  const text = await kv.get(key, 'text');
  if (text === null) return null;
  try {
    return JSON.parse(text) as CachedResponse;
  } catch {
    return null;
  }
}

/** Stores an answer for `ttlSeconds` (at least KV's minimum). */
export async function putCached(kv: KVNamespace, key: string, entry: CachedResponse, ttlSeconds: number): Promise<void> {
  await kv.put(key, JSON.stringify(entry), { expirationTtl: Math.max(MIN_TTL_SECONDS, ttlSeconds) });
}
