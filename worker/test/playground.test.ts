import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { call, postJson } from './helpers/http.ts';
import { readSse, streamedText } from './helpers/sse.ts';

/** The playground page's security headers, and CORS on the /v1 API (the browser test is test/e2e/playground.test.ts). */

const PAGES: [string, string][] = [
  ['/playground', 'text/html'],
  ['/playground/app.js', 'text/javascript'],
  ['/playground/app.css', 'text/css'],
];

function cspDirectives(res: Response): Map<string, string> {
  const csp = res.headers.get('content-security-policy') ?? '';
  return new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...values]) => [name!, values.join(' ')]),
  );
}

describe('the playground page', () => {
  it.each(PAGES)('%s is served with its content type and the security headers', async (path, type) => {
    const res = await call(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain(type);
    const csp = cspDirectives(res);
    expect(csp.get('default-src')).toBe("'none'");
    expect(csp.get('script-src')).toBe("'self'");
    expect(csp.get('style-src')).toBe("'self'");
    expect(csp.get('connect-src')).toBe("'self'");
    expect(csp.get('frame-ancestors')).toBe("'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    // the page is same-origin only: no CORS headers
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('has nothing the CSP would block: no inline script, style attribute or event handler', async () => {
    const html = await (await call('/playground')).text();
    const scripts = html.match(/<script\b[^>]*>/g) ?? [];
    expect(scripts).toEqual(['<script src="/playground/app.js" defer>']);
    expect(html).not.toMatch(/<script\b[^>]*>[^<]+<\/script>/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(html).not.toMatch(/<style\b/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('its script never turns text into HTML (model output goes in through text nodes)', async () => {
    const js = await (await call('/playground/app.js')).text();
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function'])
      expect(js, sink).not.toContain(sink);
    expect(js).toContain('appendData');
  });

  it('/playground/ (with a slash) redirects to the page', async () => {
    const res = await call('/playground/', { redirect: 'manual' });
    expect(res.status).toBe(301);
    expect(new URL(res.headers.get('location')!, 'http://edge.test').pathname).toBe('/playground');
  });

  it('holds no API key: the page asks the user for one', async () => {
    const html = await (await call('/playground')).text();
    expect(html).not.toMatch(/rk_[A-Za-z0-9_]{6,}/);
    expect(html).toContain('id="api-key"');
  });
});

describe('CORS on /v1', () => {
  it('answers a preflight without a key: any origin, GET/POST, the headers the browser asks for', async () => {
    const res = await call('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')!.split(/,\s*/)).toEqual(['GET', 'POST', 'OPTIONS']);
    // the headers the browser asked for (see api-details.test.ts for the JS SDK's x-stainless-* headers)
    expect(res.headers.get('access-control-allow-headers')!.split(/,\s*/)).toEqual(['authorization', 'content-type']);
    expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('lets a page read a streamed answer and its λ headers', async () => {
    const t = await makeTenant();
    const res = await postJson(
      '/v1/chat/completions',
      t.key,
      { model: t.model, messages: [{ role: 'user', content: 'hi' }], stream: true, lambda: 0.25 },
      { origin: 'https://app.example' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = res.headers.get('access-control-expose-headers')!.split(/,\s*/);
    expect(exposed).toEqual(
      expect.arrayContaining([
        'x-realign-lambda',
        'x-realign-preset',
        'x-request-id',
        'x-ratelimit-remaining-requests',
        'retry-after',
      ]),
    );
    expect(res.headers.get('x-realign-lambda')).toBe('0.25');
    const data = await readSse(res);
    expect(data.at(-1)).toBe('[DONE]');
    expect(streamedText(data)).toContain('λ=0.25');
  });

  it('lets a page read error answers too (a missing key, an unknown model)', async () => {
    const noKey = await call('/v1/models', { headers: { origin: 'https://app.example' } });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('access-control-allow-origin')).toBe('*');
    const t = await makeTenant();
    const missing = await call('/v1/presets?model=nope', { headers: { authorization: `Bearer ${t.key}` } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('gives the admin API no CORS: its preflight is refused like any unauthenticated call', async () => {
    const res = await call('/admin/tenants', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const get = await call('/admin/tenants', { headers: { origin: 'https://app.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });
});
