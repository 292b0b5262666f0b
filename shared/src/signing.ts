/**
 * Edge → backend request signing: HMAC-SHA256 with a shared secret over a canonical string of the method,
 * the path (with query), a timestamp, a nonce and the SHA-256 of the exact body bytes. WebCrypto only, so the
 * same code runs in Workers and in Node ≥ 20.
 *
 *   canonical = METHOD "\n" path "\n" timestamp "\n" nonce "\n" hex(sha256(body))
 *   x-realign-signature: v1=hex(hmac_sha256(secret, canonical))
 *
 * The verifier checks the timestamp's skew and the signature (constant-time, via `crypto.subtle.verify`);
 * remembering nonces so that each is accepted once is the verifier's caller's job (the backend keeps them for
 * twice the allowed skew).
 */

/** Header names of a signed request. */
export const SIGNATURE_HEADERS = {
  timestamp: 'x-realign-timestamp',
  nonce: 'x-realign-nonce',
  signature: 'x-realign-signature',
} as const;

/** Version prefix of the signature header's value. */
export const SIGNATURE_VERSION = 'v1';

/** Default largest |now − timestamp| accepted, in seconds. */
export const DEFAULT_MAX_SKEW_SECONDS = 60;

/** What is signed: the method, the path as the receiver sees it (pathname plus `?query` if any) and the body. */
export interface SignedParts {
  method: string;
  path: string;
  body: string | Uint8Array;
}

/** Headers to add to a signed request. */
export type SignatureHeaders = Record<(typeof SIGNATURE_HEADERS)[keyof typeof SIGNATURE_HEADERS], string>;

/** Why a signature was refused. */
export type SignatureFailure = 'missing_signature' | 'malformed_signature' | 'stale_timestamp' | 'bad_signature';

/** The verdict of {@link verifySignature}. */
export type VerifyResult = { ok: true; timestamp: number; nonce: string } | { ok: false; code: SignatureFailure; reason: string };

const encoder = new TextEncoder();

function hex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = '';
  for (const b of view) out += b.toString(16).padStart(2, '0');
  return out;
}

function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function bytesOf(body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  return typeof body === 'string' ? encoder.encode(body) : new Uint8Array(body);
}

/** Hex SHA-256 of a body. */
export async function sha256Hex(body: string | Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', bytesOf(body)));
}

/** The canonical string that is signed. */
export function canonicalString(method: string, path: string, timestamp: number, nonce: string, bodySha256Hex: string): string {
  return `${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodySha256Hex}`;
}

function hmacKey(secret: string, usage: 'sign' | 'verify') {
  return crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

function randomNonce(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Signs a request. `now` is in milliseconds (defaults to `Date.now()`); `nonce` defaults to 16 random bytes in hex.
 * Returns the three headers to send along with exactly the signed body.
 */
export async function signRequest(
  secret: string,
  parts: SignedParts,
  options: { now?: number; nonce?: string } = {},
): Promise<SignatureHeaders> {
  if (secret.length === 0) throw new Error('signRequest: the HMAC secret is empty; set BACKEND_HMAC_SECRET');
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000);
  const nonce = options.nonce ?? randomNonce();
  const canonical = canonicalString(parts.method, parts.path, timestamp, nonce, await sha256Hex(parts.body));
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret, 'sign'), encoder.encode(canonical));
  return {
    [SIGNATURE_HEADERS.timestamp]: String(timestamp),
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: `${SIGNATURE_VERSION}=${hex(mac)}`,
  } as SignatureHeaders;
}

/** Reads a header from a `Headers` object or a plain record (any case, first value of a list). */
function header(headers: Headers | Record<string, string | string[] | undefined>, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks a signed request's headers without its body: present and well-formed, the timestamp within
 * `maxSkewSeconds` of `now` (milliseconds). A receiver calls it before reading the body, so that a request that
 * cannot be genuine is refused without reading what it sends; {@link verifySignature} repeats it.
 */
export function checkSignatureHeaders(
  headers: Headers | Record<string, string | string[] | undefined>,
  now: number = Date.now(),
  maxSkewSeconds: number = DEFAULT_MAX_SKEW_SECONDS,
): { ok: true; timestamp: number; nonce: string; mac: Uint8Array } | { ok: false; code: SignatureFailure; reason: string } {
  const ts = header(headers, SIGNATURE_HEADERS.timestamp);
  const nonce = header(headers, SIGNATURE_HEADERS.nonce);
  const sig = header(headers, SIGNATURE_HEADERS.signature);
  if (ts === undefined || nonce === undefined || sig === undefined) {
    return {
      ok: false,
      code: 'missing_signature',
      reason: `request is not signed: send ${Object.values(SIGNATURE_HEADERS).join(', ')}`,
    };
  }
  if (!/^\d{1,12}$/.test(ts))
    return { ok: false, code: 'malformed_signature', reason: `${SIGNATURE_HEADERS.timestamp} must be Unix seconds` };
  if (!/^[A-Za-z0-9_-]{8,128}$/.test(nonce))
    return { ok: false, code: 'malformed_signature', reason: `${SIGNATURE_HEADERS.nonce} must be 8–128 URL-safe characters` };
  const prefix = `${SIGNATURE_VERSION}=`;
  const mac = sig.startsWith(prefix) ? fromHex(sig.slice(prefix.length)) : null;
  if (mac === null || mac.length !== 32)
    return {
      ok: false,
      code: 'malformed_signature',
      reason: `${SIGNATURE_HEADERS.signature} must be "${prefix}" followed by 64 hex digits`,
    };
  const timestamp = Number(ts);
  const skew = Math.abs(now / 1000 - timestamp);
  if (skew > maxSkewSeconds)
    return {
      ok: false,
      code: 'stale_timestamp',
      reason: `timestamp is ${Math.round(skew)} s away from the server's clock (at most ${maxSkewSeconds} s allowed)`,
    };
  return { ok: true, timestamp, nonce, mac };
}

/**
 * Verifies a signed request. `now` is in milliseconds. Checks, in order: the headers are present and well-formed,
 * the timestamp is within `maxSkewSeconds` of `now`, and the HMAC matches (compared in constant time by WebCrypto).
 */
export async function verifySignature(
  secret: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  parts: SignedParts,
  now: number = Date.now(),
  maxSkewSeconds: number = DEFAULT_MAX_SKEW_SECONDS,
): Promise<VerifyResult> {
  if (secret.length === 0)
    return {
      ok: false,
      code: 'bad_signature',
      reason: 'the server has no HMAC secret configured; signed requests cannot be verified',
    };
  const checked = checkSignatureHeaders(headers, now, maxSkewSeconds);
  if (!checked.ok) return checked;
  const { timestamp, nonce, mac } = checked;
  const canonical = canonicalString(parts.method, parts.path, timestamp, nonce, await sha256Hex(parts.body));
  const good = await crypto.subtle.verify(
    'HMAC',
    await hmacKey(secret, 'verify'),
    new Uint8Array(mac),
    encoder.encode(canonical),
  );
  return good
    ? { ok: true, timestamp, nonce }
    : { ok: false, code: 'bad_signature', reason: 'signature does not match the request' };
}
