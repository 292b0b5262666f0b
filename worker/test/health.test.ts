import { describe, expect, it } from 'vitest';
import { call, callWith } from './helpers/http.ts';
import { refusedBackendUrl, stubBackend, uniqueTag } from './helpers/stub.ts';

describe('health endpoints', () => {
  it('answers /healthz inside workerd, with a request id', async () => {
    const res = await call('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it('always sends its own request id, and echoes a plain client id as x-client-request-id', async () => {
    // the edge's own id always; a plain client id is echoed beside it (issue 13 item 11)
    const plain = await call('/healthz', { headers: { 'x-request-id': 'client-42' } });
    expect(plain.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(plain.headers.get('x-client-request-id')).toBe('client-42');
    expect((await call('/healthz', { headers: { 'x-client-request-id': 'sdk-7' } })).headers.get('x-client-request-id')).toBe(
      'sdk-7',
    );
    const odd = await call('/healthz', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(odd.headers.get('x-request-id')).toMatch(/^req_/);
    expect(odd.headers.get('x-client-request-id')).toBeNull();
  });

  it('/readyz is 200 when a backend is ready and 503 when none is', async () => {
    const ok = await callWith(
      { BACKENDS: JSON.stringify([{ url: refusedBackendUrl() }, { url: stubBackend('ok', uniqueTag('ready')) }]) },
      '/readyz',
    );
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      ready: true,
      backends: [
        { backend: 0, ready: false },
        { backend: 1, ready: true },
      ],
    });
    const down = await callWith(
      { BACKENDS: JSON.stringify([{ url: refusedBackendUrl() }, { url: stubBackend('fail500', uniqueTag('ready')) }]) },
      '/readyz',
    );
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      ready: false,
      backends: [{ reason: 'connection failed' }, { reason: 'status 500' }],
    });
  });

  it('answers unknown routes with an OpenAI-style 404', async () => {
    const res = await call('/v2/nothing');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'unknown_route' } });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });
});
