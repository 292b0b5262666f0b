/**
 * Whose failure a backend's 5xx is (shared/src/failure-scope.ts): a 500 for this request alone leaves the backend
 * in rotation for everybody and is not run again on another backend; a 503 (the backend cannot take work now)
 * still takes it out of rotation and the request is retried elsewhere; a 503 of one model there (failed to load,
 * its engine gone) takes only that model there out — the backend's other models keep it, also after the cooldown,
 * when its `/readyz` probe is judged by the model's own state. The same rule for a stream's error event.
 */
import { describe, expect, it } from 'vitest';
import { makeTenant, type TestTenant } from './helpers/fixtures.ts';
import { callWith } from './helpers/http.ts';
import { readSse } from './helpers/sse.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

/** Weight that makes a backend the first choice except with probability ~1e-9. */
const FIRST = 1e9;

function sender(t: TestTenant, backends: { url: string; weight: number }[], more: Record<string, string> = {}) {
  const vars = { BACKENDS: JSON.stringify(backends), ...more };
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

    // the engine is the model's: a tenant of another model still gets that backend first
    const other = await makeTenant();
    const elsewhere = await sender(other, backends)({});
    expect(elsewhere.status).toBe(200);
    expect(elsewhere.headers.get('x-realign-attempts')).toBe('1');
    await elsewhere.body?.cancel();
    expect((await stubRequests(firstTag)).length, "another model's request goes to the backend").toBe(2);
    expect((await stubRequests(spareTag)).length).toBe(1);
  });
});

/** The `/v1/…` requests (not `/readyz` probes) a stub received under `tag`, by model. */
async function completionsOf(tag: string): Promise<string[]> {
  return (await stubRequests(tag)).filter((r) => r.path.startsWith('/v1/')).map((r) => String(r.body.model));
}

describe('one model that cannot serve on a backend of several models', () => {
  /** A `models` stub tried first (its `down-…` models failed to load) and an `ok` spare; tenants of a good and a down model. */
  async function setup() {
    const firstTag = uniqueTag('scope-models');
    const spareTag = uniqueTag('scope-models-spare');
    const backends = [
      { url: stubBackend('models', firstTag), weight: FIRST },
      { url: stubBackend('ok', spareTag), weight: 1 },
    ];
    const good = await makeTenant({ model: uniqueTag('good') });
    const down = await makeTenant({ model: uniqueTag('down') });
    return { firstTag, spareTag, backends, good, down };
  }

  it("its 503 model_unavailable takes only that model there out: the request is retried elsewhere, the others' stay", async () => {
    const { firstTag, spareTag, backends, good, down } = await setup();
    const res = await sender(down, backends)({});
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-attempts')).toBe('2');
    await res.body?.cancel();

    // another tenant's model on that backend: the backend was not taken out of rotation
    const other = await sender(good, backends)({});
    expect(other.status).toBe(200);
    expect(other.headers.get('x-realign-attempts')).toBe('1');
    await other.body?.cancel();
    expect(await completionsOf(firstTag)).toEqual([down.model, good.model]);

    // the failed model there is cooling down: its next request goes straight to the spare
    const again = await sender(down, backends)({});
    expect(again.status).toBe(200);
    expect(again.headers.get('x-realign-attempts')).toBe('1');
    await again.body?.cancel();
    expect(await completionsOf(firstTag)).toEqual([down.model, good.model]);
    expect(await completionsOf(spareTag)).toEqual([down.model, down.model]);
  });

  it("after the cooldown the probe goes by the model's own state: a failed model stays out, the backend's ready /readyz notwithstanding", async () => {
    const { firstTag, spareTag, backends, good, down } = await setup();
    const cooldown = { HEALTH_COOLDOWN_MS: '1' };
    // the good model first, so the backend's /readyz is 200 (one model serves) while the down one is failed
    const first = await sender(good, backends, cooldown)({});
    expect(first.status).toBe(200);
    await first.body?.cancel();
    const failed = await sender(down, backends, cooldown)({});
    expect(failed.headers.get('x-realign-attempts')).toBe('2');
    await failed.body?.cancel();

    await new Promise((r) => setTimeout(r, 10));
    // on probation: the probe (200, naming the model failed) keeps the model out, so no second 503 and retry
    const again = await sender(down, backends, cooldown)({});
    expect(again.status).toBe(200);
    expect(again.headers.get('x-realign-attempts'), 'the probe kept the failed model out').toBe('1');
    await again.body?.cancel();
    const probes = (await stubRequests(firstTag)).filter((r) => r.path === '/readyz');
    expect(probes.length, 'the model was probed after its cooldown').toBe(1);
    expect(await completionsOf(firstTag)).toEqual([good.model, down.model]);
    expect(await completionsOf(spareTag)).toEqual([down.model, down.model]);

    // and the good model still goes to that backend
    const still = await sender(good, backends, cooldown)({});
    expect(still.headers.get('x-realign-attempts')).toBe('1');
    await still.body?.cancel();
    expect(await completionsOf(firstTag)).toEqual([good.model, down.model, good.model]);
  });

  it('a model that serves passes its probe while another model there keeps the backend unready (still loading)', async () => {
    const { firstTag, backends, good } = await setup();
    const loading = await makeTenant({ model: uniqueTag('loading') });
    const cooldown = { HEALTH_COOLDOWN_MS: '1' };
    const served = await sender(good, backends, cooldown)({});
    expect(served.headers.get('x-realign-attempts')).toBe('1');
    await served.body?.cancel();
    const refused = await sender(loading, backends, cooldown)({});
    expect(refused.status).toBe(200);
    expect(refused.headers.get('x-realign-attempts'), 'model_loading: retried on the spare').toBe('2');
    await refused.body?.cancel();
    // the edge's own /readyz probes the backend as a whole: 503 while a model loads, so it is marked down
    const edge = await callWith({ BACKENDS: JSON.stringify(backends), ...cooldown }, '/readyz');
    expect(((await edge.json()) as { backends: { ready: boolean }[] }).backends[0]!.ready).toBe(false);

    await new Promise((r) => setTimeout(r, 10));
    // on probation for the good model's request: its probe goes by the good model's state (ready), not the 503
    const again = await sender(good, backends, cooldown)({});
    expect(again.status).toBe(200);
    expect(again.headers.get('x-realign-attempts')).toBe('1');
    await again.body?.cancel();
    expect(await completionsOf(firstTag)).toEqual([good.model, loading.model, good.model]);
  });
});
