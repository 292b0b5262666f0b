/**
 * A per-isolate cache of what the request path reads from D1: the key → tenant row, a request's model grant,
 * policies, presets and preferences, a tenant's model list. A warm key makes no D1 round trip at all.
 *
 * Bounds:
 *   - **time**: an entry lives `READ_CACHE_TTL_MS` (wrangler.toml, default {@link DEFAULT_READ_CACHE_TTL_MS}) from
 *     the moment its D1 read *started*, so a write that lands after a read began is seen by every isolate within
 *     one TTL. This is the revocation bound: a key revoked (tenant deleted, grant taken away, policy changed) in any
 *     isolate is refused everywhere within `READ_CACHE_TTL_MS`. `0` turns the cache off (every request reads D1).
 *   - **space**: at most {@link MAX_ENTRIES} entries, least recently used dropped first.
 *   - **writes in this isolate**: every admin write bumps {@link invalidateReadCache}'s version and empties the
 *     cache, and a read that started before a bump is not stored, so the isolate that made the write never serves
 *     the old value.
 * Unknown keys are cached too (as "no such key"), so a flood of made-up keys costs one D1 read per key and TTL.
 * Only settled values are kept, never a pending read: workerd ties a read's I/O to the request that started it, so a
 * request awaiting another request's read fails ("Cannot perform I/O on behalf of a different request") or hangs
 * when that request ends first. Concurrent misses of one entry therefore each read D1 (a cold key only).
 */

/** Default time an entry is served without asking D1 again: the revocation bound, in ms. */
export const DEFAULT_READ_CACHE_TTL_MS = 10_000;
/** Most entries one isolate keeps (each a few hundred bytes). */
export const MAX_ENTRIES = 10_000;

interface Entry {
  value: unknown;
  expiresAt: number;
}

const entries = new Map<string, Entry>();
let version = 0;

/** The TTL of the read cache from the `READ_CACHE_TTL_MS` var (ms; 0 = off). A broken value falls back to the default. */
export function readCacheTtlMs(env: Env): number {
  const raw = env.READ_CACHE_TTL_MS as string | undefined;
  if (raw === undefined || raw === '') return DEFAULT_READ_CACHE_TTL_MS;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : DEFAULT_READ_CACHE_TTL_MS;
}

/**
 * The cached value of `key`, else `load()` (stored when it succeeds and no admin write of this isolate happened
 * meanwhile; the entry expires one TTL after the load *started*). A failed load is never stored.
 */
export async function cachedRead<T>(env: Env, key: string, load: () => Promise<T>): Promise<T> {
  const ttl = readCacheTtlMs(env);
  if (ttl === 0) return load();
  const now = Date.now();
  const hit = entries.get(key);
  if (hit !== undefined) {
    entries.delete(key);
    if (hit.expiresAt > now) {
      entries.set(key, hit); // most recently used last
      return hit.value as T;
    }
  }
  const started = version;
  const value = await load();
  if (version === started) {
    entries.delete(key);
    entries.set(key, { value, expiresAt: now + ttl });
    while (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value!);
  }
  return value;
}

/** Forgets every entry (called after each admin write of this isolate). */
export function invalidateReadCache(): void {
  version++;
  entries.clear();
}

/** How many entries are held (for tests). */
export function readCacheSize(): number {
  return entries.size;
}
