/**
 * Headers of every playground response, set by Hono's secure-headers middleware. The page loads its script and
 * style from its own origin only (no inline code, so no hashes to keep in step), talks only to its own origin, and
 * may not be framed. The middleware adds the usual rest (HSTS, COOP/CORP same-origin, nosniff, no DNS prefetch).
 */
import { secureHeaders } from 'hono/secure-headers';

/** Middleware for the playground's routes. */
export function playgroundSecurityHeaders() {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      connectSrc: ["'self'"],
      // the favicon is an empty data: URL so the browser does not ask the API for /favicon.ico
      imgSrc: ["'self'", 'data:'],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
    referrerPolicy: 'no-referrer',
    // for browsers that predate frame-ancestors
    xFrameOptions: 'DENY',
    permissionsPolicy: { camera: [], microphone: [], geolocation: [], payment: [] },
  });
}
