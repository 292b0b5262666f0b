/**
 * API key material: generation, hashing for storage and lookup, and a constant-time comparison for the admin
 * token. Keys look like `rk_<43 url-safe characters>` (32 random bytes); only their SHA-256 is stored.
 */
import { sha256Hex } from '../../../shared/src/signing.ts';

/** Prefix of every API key (lets secret scanners recognize leaked keys). */
export const KEY_PREFIX = 'rk_';

function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** A fresh API key and the short prefix shown in listings. */
export function generateApiKey(): { key: string; prefix: string } {
  const key = KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { key, prefix: key.slice(0, KEY_PREFIX.length + 6) };
}

/** What is stored for a key: hex SHA-256 of the whole key. */
export function hashApiKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** A random id with a readable prefix, e.g. `key_3f9a…`. */
export function newId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

/** Compares two secrets in time independent of where they differ (both are hashed to equal-length digests first). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [da, db] = await Promise.all([
    crypto.subtle.digest('SHA-256', enc.encode(a)),
    crypto.subtle.digest('SHA-256', enc.encode(b)),
  ]);
  const x = new Uint8Array(da);
  const y = new Uint8Array(db);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}
