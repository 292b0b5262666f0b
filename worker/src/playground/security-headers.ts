/**
 * Headers of every playground response. The page loads its script and style from its own origin only (no inline
 * code, so no hashes to keep in step), talks only to its own origin, and may not be framed.
 */

/** Content-Security-Policy of the playground. */
export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  // the favicon is an empty data: URL so the browser does not ask the API for /favicon.ico
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Security headers set on the page, its script and its style sheet. */
export const PLAYGROUND_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': PLAYGROUND_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // for browsers that predate frame-ancestors
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  // the page is small and changes with deployments; revalidate rather than serve a stale script
  'cache-control': 'no-cache',
};
