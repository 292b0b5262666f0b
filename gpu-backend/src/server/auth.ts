/**
 * Who may call the backend: the edge with signed requests (HMAC-SHA256 over method, path, timestamp, nonce and
 * body; timestamps within the allowed skew; every nonce accepted once), or a direct user with a bearer token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { authenticationError } from '../../../shared/src/errors.ts';
import { checkSignatureHeaders, SIGNATURE_HEADERS, verifySignature } from '../../../shared/src/signing.ts';
import type { BackendEnv } from './http-types.ts';

/** Remembers nonces until their timestamps fall out of the skew window (after which replays fail anyway). */
export class NonceStore {
  private readonly seen = new Map<string, number>();
  private lastPrune = 0;

  constructor(private readonly windowMs: number) {}

  /** True the first time a nonce is offered inside the window. */
  accept(nonce: string, now = Date.now()): boolean {
    if (now - this.lastPrune > this.windowMs / 4) this.prune(now);
    if (this.seen.has(nonce)) return false;
    this.seen.set(nonce, now + this.windowMs);
    return true;
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [n, expires] of this.seen) if (expires <= now) this.seen.delete(n);
  }
}

/** Credentials the server accepts. */
export interface AuthOptions {
  hmacSecret: string | null;
  bearerTokens: string[];
  allowUnauthenticated: boolean;
  maxSkewSeconds: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks a bearer token against the configured ones in constant time (per candidate, over fixed-size digests). */
export function bearerMatches(token: string, tokens: readonly Buffer[]): boolean {
  const d = digest(token);
  let ok = false;
  for (const t of tokens) ok = timingSafeEqual(d, t) || ok;
  return ok;
}

/**
 * The authentication middlewares, one on each side of reading the body. Before it: a bearer token (or its absence)
 * is decided, and a signed request's headers are checked for form and clock skew, so a request that cannot be
 * genuine is refused without its body being read. After it: the signature over the body, then its nonce.
 */
export function authenticate(opts: AuthOptions): {
  beforeBody: MiddlewareHandler<BackendEnv>;
  afterBody: MiddlewareHandler<BackendEnv>;
} {
  const nonces = new NonceStore(opts.maxSkewSeconds * 2 * 1000);
  const tokens = opts.bearerTokens.map(digest);
  const isSigned = (c: Context<BackendEnv>) =>
    c.req.header(SIGNATURE_HEADERS.signature) !== undefined || c.req.header(SIGNATURE_HEADERS.timestamp) !== undefined;
  return {
    beforeBody: async function authenticateHeaders(c, next) {
      if (isSigned(c)) {
        if (!opts.hmacSecret)
          throw authenticationError(
            'this backend has no HMAC secret configured; signed requests cannot be verified',
            'signature_not_configured',
          );
        const checked = checkSignatureHeaders(c.req.raw.headers, Date.now(), opts.maxSkewSeconds);
        if (!checked.ok) throw authenticationError(checked.reason, checked.code);
        return next();
      }
      const header = c.req.header('authorization');
      if (header !== undefined) {
        const m = /^Bearer\s+(.+)$/i.exec(header);
        if (!m || tokens.length === 0 || !bearerMatches(m[1].trim(), tokens))
          throw authenticationError('invalid bearer token', 'invalid_api_key');
        c.set('auth', 'bearer');
        return next();
      }
      if (opts.allowUnauthenticated) {
        c.set('auth', 'none');
        return next();
      }
      throw authenticationError(
        'missing credentials: send "Authorization: Bearer <token>" or a request signed by the edge',
        'missing_credentials',
      );
    },
    afterBody: async function authenticateBody(c, next) {
      if (!isSigned(c)) return next();
      const url = new URL(c.req.url);
      const result = await verifySignature(
        opts.hmacSecret!,
        c.req.raw.headers,
        { method: c.req.method, path: url.pathname + url.search, body: c.get('body') },
        Date.now(),
        opts.maxSkewSeconds,
      );
      if (!result.ok) throw authenticationError(result.reason, result.code);
      if (!nonces.accept(result.nonce))
        throw authenticationError('this nonce was already used: every signed request needs a fresh nonce', 'replayed_nonce');
      c.set('auth', 'hmac');
      return next();
    },
  };
}
