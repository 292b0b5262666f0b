/**
 * Whose failure a backend's 5xx is (shared/src/failure-scope.ts): a 500 for this request alone leaves the backend
 * in rotation for everybody and is not run again on another backend; a 503 (the backend cannot take work now)
 * still takes it out of rotation and the request is retried elsewhere. The same rule for a stream's error event.
 */
import { describe, expect, it } from 'vitest';
import { makeTenant, type TestTenant } from './helpers/fixtures.ts';
import { callWith } from './helpers/http.ts';
import { readSse } from './helpers/sse.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

/** Weight that makes a backend the first choice except with probability ~1e-9. */
const FIRST = 1e9;

function sender(t: TestTenant, backends: { url: string; weight: number }[]) {
  const vars = { BACKENDS: JSON.stringify(backends) };
  return (body: Record<string, unknown>) =>
    callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'whose failure' }], ...body }),
    });
}

/** Two backends under their own tags: `first` is tried first, `spare` only after it. */
function pair(first: string) {
  const firstTag = uniqueTag(`scope-${first}`);
  const spareTag = uniqueTag(`scope-spare-${first}`);
  return {
    firstTag,
    spareTag,
    backends: [
      { url: stubBackend(first, firstTag), weight: FIRST },
      { url: stubBackend('ok', spareTag), weight: 1 },
    ],
  };
}

describe("a backend's 5xx: this request's failure or the backend's", () => {
  it("a 500 for this request alone is the client's answer: not retried elsewhere, and the backend stays in rotation", async () => {
    const t = await makeTenant();
    const { firstTag, spareTag, backends } = pair('fail500');
    const send = sender(t, backends);

    const res = await send({});
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      error: { message: 'stub: internal failure', type: 'server_error', param: null, code: 'internal_error' },
    });
    expect((await stubRequests(spareTag)).length, 'the failed request is not run again on another backend').toBe(0);
    // the usage is the failing backend's own count (its ledger: the prompt read, nothing generated)
    expect(await usageRowOf(res.headers.get('x-request-id')!)).toMatchObject({
      status: 500,
      prompt_tokens: 5,
      completion_tokens: 0,
    });

    // the next request (anyone's) still goes to that backend first: it was not marked down
    const next = await send({});
    expect(next.status).toBe(500);
    await next.body?.cancel();
    expect((await stubRequests(firstTag)).length, 'the backend is still in rotation').toBe(2);
    expect((await stubRequests(spareTag)).length).toBe(0);
  });

  it('a 503 (the backend cannot take work now) still takes it out of rotation, and the request is retried elsewhere', async () => {
    const t = await makeTenant();
    const { firstTag, spareTag, backends } = pair('fail503');
    const send = sender(t, backends);

    const res = await send({});
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-attempts')).toBe('2');
    await res.body?.cancel();
    const next = await send({});
    expect(next.status).toBe(200);
    expect(next.headers.get('x-realign-attempts'), 'the unavailable backend is cooling down').toBe('1');
    await next.body?.cancel();
    expect((await stubRequests(firstTag)).length).toBe(1);
    expect((await stubRequests(spareTag)).length).toBe(2);
  });

  it("a stream ending with this request's error event (server_error) leaves the backend in rotation", async () => {
    const t = await makeTenant();
    const { firstTag, spareTag, backends } = pair('row-error');
    const send = sender(t, backends);

    const res = await send({ stream: true });
    expect(res.status).toBe(200);
    const data = await readSse(res);
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ error: { type: 'server_error', code: 'sequence_failed' } });
    expect((await usageRowOf(res.headers.get('x-request-id')!)).status).toBe(500);

    const next = await send({});
    expect(next.status).toBe(200);
    await next.body?.cancel();
    expect((await stubRequests(firstTag)).length, 'the backend is still in rotation').toBe(2);
    expect((await stubRequests(spareTag)).length).toBe(0);
  });

  it("a stream ending with the backend's own error event (backend_error: the engine is gone) takes it out of rotation", async () => {
    const t = await makeTenant();
    const { firstTag, spareTag, backends } = pair('engine-gone');
    const send = sender(t, backends);

    const res = await send({ stream: true });
    expect(res.status).toBe(200);
    const data = await readSse(res);
    expect(JSON.parse(data.at(-1)!)).toMatchObject({ error: { type: 'backend_error', code: 'engine_unavailable' } });
    expect((await stubRequests(spareTag)).length, 'no retry after the first byte').toBe(0);

    const next = await send({});
    expect(next.status).toBe(200);
    expect(next.headers.get('x-realign-attempts')).toBe('1');
    await next.body?.cancel();
    expect((await stubRequests(firstTag)).length, 'the backend whose engine is gone is cooling down').toBe(1);
    expect((await stubRequests(spareTag)).length).toBe(1);
  });
});
