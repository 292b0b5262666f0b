/**
 * `GET /playground`: a page to try λ in a browser (see page-html.ts), with its script and style sheet, all
 * served with the security headers of security-headers.ts (Hono's secure-headers middleware). The page holds no key of its own: the user types one.
 */
import { Hono } from 'hono';
import { notFound } from '../../../shared/src/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { PLAYGROUND_CSS } from './page-css.ts';
import { PLAYGROUND_HTML } from './page-html.ts';
import { PLAYGROUND_JS } from './script.ts';
import { playgroundSecurityHeaders } from './security-headers.ts';

// the page is small and changes with deployments: revalidate rather than serve a stale script
const REVALIDATE = { 'cache-control': 'no-cache' };

function serve(body: string, contentType: string) {
  return () => new Response(body, { headers: { 'content-type': contentType, ...REVALIDATE } });
}

/** Routes under `/playground` (mounted by src/index.ts). */
export const playgroundApp = new Hono<AppEnv>()
  .use('*', playgroundSecurityHeaders())
  .get('/', serve(PLAYGROUND_HTML, 'text/html; charset=utf-8'))
  // the local development key, only where PLAYGROUND_DEV_KEY is set (`npm start`), so the page opens connected
  .get('/dev-key', (c) => {
    const key = c.env.PLAYGROUND_DEV_KEY;
    if (!key) return c.json(notFound('no development key is offered here').toBody(), 404, REVALIDATE);
    return c.json({ key }, 200, { 'cache-control': 'no-store' });
  })
  .get('/app.js', serve(PLAYGROUND_JS, 'text/javascript; charset=utf-8'))
  .get('/app.css', serve(PLAYGROUND_CSS, 'text/css; charset=utf-8'));
