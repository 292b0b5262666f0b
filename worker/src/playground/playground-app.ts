/**
 * `GET /playground`: a page to try λ in a browser (see page-html.ts), with its script and style sheet, all
 * served with the security headers of security-headers.ts. The page holds no key of its own: the user types one.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { PLAYGROUND_CSS } from './page-css.ts';
import { PLAYGROUND_HTML } from './page-html.ts';
import { PLAYGROUND_JS } from './script.ts';
import { PLAYGROUND_SECURITY_HEADERS } from './security-headers.ts';

function serve(body: string, contentType: string) {
  return () => new Response(body, { headers: { 'content-type': contentType, ...PLAYGROUND_SECURITY_HEADERS } });
}

/** Routes under `/playground` (mounted by src/index.ts). */
export const playgroundApp = new Hono<AppEnv>()
  .get('/', serve(PLAYGROUND_HTML, 'text/html; charset=utf-8'))
  .get('/app.js', serve(PLAYGROUND_JS, 'text/javascript; charset=utf-8'))
  .get('/app.css', serve(PLAYGROUND_CSS, 'text/css; charset=utf-8'));
