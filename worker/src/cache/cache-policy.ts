/**
 * Whether a request may be answered from (and stored in) the response cache. Only deterministic generations
 * are cached: temperature 0 or a fixed seed, after preset defaults were applied. The client can opt out with
 * `Cache-Control: no-cache` (or `no-store`); a tenant with a TTL of 0 never caches. `/v1/logits` is not cached:
 * its answers are large and trainers rarely repeat an input.
 */
import type { RequestKind } from '../../../shared/src/parse-request.ts';

/** `lookup`: try the cache; `bypass`: go to the backend and store nothing. */
export type CacheDecision = { mode: 'lookup' } | { mode: 'bypass'; reason: string };

/** Decides for one resolved request. */
export function decideCaching(
  kind: RequestKind,
  request: { temperature?: number; seed?: number },
  cacheControl: string | undefined,
  ttlSeconds: number,
): CacheDecision {
  if (kind === 'logits') return { mode: 'bypass', reason: 'logits are not cached' };
  if (ttlSeconds <= 0) return { mode: 'bypass', reason: 'caching is off for this tenant' };
  if (cacheControl && /(^|[\s,])no-(cache|store)($|[\s,=])/i.test(cacheControl))
    return { mode: 'bypass', reason: 'client sent no-cache' };
  if (request.temperature !== 0 && request.seed === undefined)
    return { mode: 'bypass', reason: 'sampling request (temperature > 0, no seed)' };
  return { mode: 'lookup' };
}
