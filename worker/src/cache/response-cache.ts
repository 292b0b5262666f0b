/**
 * The response cache in KV: finished completions stored as JSON under tenant-scoped keys, with a TTL — and, in
 * front of it, a small per-isolate memory of the answers this isolate stored or read (at most
 * {@link HOT_MAX_ENTRIES} entries and {@link HOT_MAX_BYTES} of JSON, each for at most {@link HOT_TTL_MS} and never past
 * its KV expiry), so a warm cache HIT makes no KV read. Entries never change under a key (the key is a hash of the
 * whole request and the tenant generation), so the memory can only be stale by expiry, which it respects.
 */
import type { ChatCompletion, TextCompletion } from '../../../shared/src/responses.ts';

/** A stored answer. */
export interface CachedResponse {
  kind: 'chat' | 'completions';
  body: ChatCompletion | TextCompletion;
  storedAt: number;
  /** When the KV entry expires (Unix ms); entries stored before this field existed expire by KV alone. */
  expiresAt?: number;
}

/** Longest time an answer is served from an isolate's memory without asking KV. */
export const HOT_TTL_MS = 30_000;
/** Most answers one isolate keeps in memory, and most bytes of their JSON. */
export const HOT_MAX_ENTRIES = 1000;
export const HOT_MAX_BYTES = 16 * 1024 * 1024;

const hot = new Map<string, { entry: CachedResponse; until: number; bytes: number }>();
let hotBytes = 0;

function remember(key: string, entry: CachedResponse, bytes: number, now: number): void {
  forget(key);
  const until = Math.min(now + HOT_TTL_MS, entry.expiresAt ?? entry.storedAt + MIN_TTL_SECONDS * 1000);
  if (until <= now || bytes > HOT_MAX_BYTES / 16) return;
  hot.set(key, { entry, until, bytes });
  hotBytes += bytes;
  while (hot.size > HOT_MAX_ENTRIES || hotBytes > HOT_MAX_BYTES) forget(hot.keys().next().value!);
}

function forget(key: string): void {
  const had = hot.get(key);
  if (had === undefined) return;
  hot.delete(key);
  hotBytes -= had.bytes;
}

/** Empties this isolate's memory of answers (tests: a cold isolate). */
export function forgetHotResponses(): void {
  hot.clear();
  hotBytes = 0;
}

/** KV refuses TTLs under 60 s. */
export const MIN_TTL_SECONDS = 60;

/** The stored answer for `key`, or null (also for an entry that no longer parses). */
export async function getCached(kv: KVNamespace, key: string): Promise<CachedResponse | null> {
  const now = Date.now();
  const held = hot.get(key);
  if (held !== undefined) {
    if (held.until > now) return held.entry;
    forget(key);
  }
  const text = await kv.get(key, 'text');
  if (text === null) return null;
  let entry: CachedResponse;
  try {
    entry = JSON.parse(text) as CachedResponse;
  } catch {
    return null;
  }
  remember(key, entry, text.length, now);
  return entry;
}

/** Stores an answer for `ttlSeconds` (at least KV's minimum). */
export async function putCached(kv: KVNamespace, key: string, entry: CachedResponse, ttlSeconds: number): Promise<void> {
  const ttl = Math.max(MIN_TTL_SECONDS, ttlSeconds);
  const stored = { ...entry, expiresAt: entry.storedAt + ttl * 1000 };
  const text = JSON.stringify(stored);
  await kv.put(key, text, { expirationTtl: ttl });
  remember(key, stored, text.length, Date.now());
}
