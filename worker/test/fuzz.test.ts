/**
 * Fuzzing the edge worker inside workerd: thousands of random and mutated requests (bodies, headers, query strings,
 * methods, paths, credentials) against every public route — `/v1/*`, health, the playground and the admin API —
 * with the stub backend answering whatever passes validation. Every response must be a non-5xx with OpenAI's error JSON (or a
 * well-formed success), carry a request id, and arrive: nothing lost, nothing hung. The run prints its counts.
 * `REALIGN_FUZZ_SCALE` (a binding set from the environment in vitest.config.mts; `npm run soak` raises it) scales
 * the number of cases; `REALIGN_FUZZ_SEED` replays a run.
 */
import fc from 'fast-check';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { fuzzCase, validBody, type AuthMode, type FuzzCase, type Route } from '../../test/fuzz/requests.ts';
import { describeViolations, judge, newTally, runPool, summary } from '../../test/fuzz/verdict.ts';
import { makeTenant } from './helpers/fixtures.ts';
import worker from '../src/index.ts';
import { ADMIN_TOKEN, ORIGIN, admin, call } from './helpers/http.ts';
import { uniqueTag } from './helpers/stub.ts';

const knobs = env as unknown as { REALIGN_FUZZ_SCALE?: string; REALIGN_FUZZ_SEED?: string };
const SCALE = Math.max(0.1, Number(knobs.REALIGN_FUZZ_SCALE ?? '1') || 1);
const SEED = knobs.REALIGN_FUZZ_SEED ? Number(knobs.REALIGN_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Longest a single request may take before it counts as hung (the stub answers in milliseconds). */
const DEADLINE_MS = 10_000;
/** Requests in flight at once (workerd serves these tests on one thread; more only adds contention). */
const CONCURRENCY = 4;
/** Cases among which one in ten goes through SELF (see `sender`). */
const SELF_CASES = 2000;

const lambda = fc.double({ min: 0, max: 1, noNaN: true });

function authHeader(mode: AuthMode, good: string, other: string): Record<string, string> {
  switch (mode) {
    case 'valid':
      return { authorization: `Bearer ${good}` };
    case 'none':
      return {};
    case 'wrong':
      return { authorization: `Bearer ${good.slice(0, -2)}zz` };
    case 'malformed':
      return { authorization: `Basic ${btoa(`x:${good}`)}` };
    case 'alt':
      return { authorization: `Bearer ${other}` };
  }
}

/** The worker's fetch handler called directly (as `callWith` does), waiting for its `waitUntil` work. */
async function direct(path: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, init), env, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(res.status === 204 || res.status === 304 ? null : body, res);
}

/**
 * Sends a case to the worker with the credentials its auth mode stands for: one in ten of the first SELF_CASES
 * through SELF (the runtime's HTTP layer in front), the rest to the fetch handler directly — the same app and
 * bindings at a tenth of the cost. SELF is capped because the test pool wraps the worker's entrypoint class in one
 * more Proxy layer per instance (vitest-pool-workers' createProxyPrototypeClass), so a few thousand SELF calls in one
 * isolate slow every later call and end in "Maximum call stack size exceeded" — a harness limit, not the worker's.
 */
function sender(c: FuzzCase, index: number, key: string): () => Promise<Response> {
  const isAdmin = c.path.startsWith('/admin');
  const auth = isAdmin ? authHeader(c.auth, ADMIN_TOKEN, key) : authHeader(c.auth, key, ADMIN_TOKEN);
  const init = { method: c.method, headers: { ...c.headers, ...auth }, body: c.body };
  return index % 10 === 0 && index < SELF_CASES ? () => call(c.path, { ...init, signal: AbortSignal.timeout(DEADLINE_MS) }) : () => direct(c.path, init);
}

const requestIdCheck = (res: Response) => (res.headers.get('x-request-id') ? [] : ['no x-request-id header']);

describe('fuzzing the worker', () => {
  it('public API: random and mutated requests never get a 5xx, always get the error JSON, and none is lost', { timeout: 600_000 }, async () => {
    const t = await makeTenant({ requestsPerMinute: 1e9, tokensPerMinute: 1e12, presets: { quick: { lambda: 0.25, sampling: { temperature: 0 } } } });
    const valid = { models: [t.model, t.model, t.model, 'no-such-model'], maxTokens: 8, lambda, presets: ['quick', 'missing'] };
    const routes: Route[] = [
      { method: 'POST', path: '/v1/chat/completions', body: validBody('chat', valid) },
      { method: 'POST', path: '/v1/completions', body: validBody('completions', valid) },
      { method: 'POST', path: '/v1/logits', body: validBody('logits', valid) },
      { method: 'GET', path: '/v1/models', body: null },
      { method: 'GET', path: '/v1/presets', body: null },
      { method: 'GET', path: '/healthz', body: null },
      { method: 'GET', path: '/readyz', body: null },
      { method: 'GET', path: '/playground', body: null },
      { method: 'GET', path: '/playground/app.js', body: null },
    ];
    const cases = fc.sample(fuzzCase({ routes }), { numRuns: Math.round(2000 * SCALE), seed: SEED });
    const tally = newTally();
    await runPool(cases, CONCURRENCY, (c, i) => judge(tally, i, c, sender(c, i, t.key), DEADLINE_MS, requestIdCheck));
    console.log(summary('worker /v1', SEED, tally));
    expect(tally.lost, describeViolations(tally)).toBe(0);
    expect(tally.violations.length, describeViolations(tally)).toBe(0);
    // statuses that show the fuzz reached every stage: served, refused in validation, in auth, model lookup
    for (const status of ['200', '400', '401', '404']) expect(tally.byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(tally.byStatus)}`).toBeGreaterThan(0);

    // the worker still serves a plain request afterwards
    const after = await call('/v1/chat/completions', { method: 'POST', headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'still there?' }] }) });
    expect(after.status).toBe(200);
  });

  it('admin API: random and mutated admin calls never get a 5xx and always get the error JSON', { timeout: 600_000 }, async () => {
    const tenant = uniqueTag('fuzz-admin');
    await admin('POST', '/tenants', { id: tenant, name: tenant });
    const key = (await admin<{ key: string }>('POST', `/tenants/${tenant}/keys`, { name: 'fuzz' })).key;
    const model = uniqueTag('fuzz-model');
    const num = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constant(0));
    const lam = fc.double({ min: -2, max: 2, noNaN: true });
    const tenantBody = fc.record({ id: fc.option(fc.constantFrom(uniqueTag('t'), uniqueTag('t')), { nil: undefined }), name: fc.constantFrom('a', 'tenant x'), requests_per_minute: fc.option(num, { nil: undefined }), tokens_per_minute: fc.option(num, { nil: undefined }), cache_ttl_seconds: fc.option(fc.constantFrom(0, 60, 30), { nil: undefined }) });
    const strip = <T extends Record<string, unknown>>(a: fc.Arbitrary<T>) => a.map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
    const routes: Route[] = [
      { method: 'GET', path: '/admin/tenants', body: null },
      { method: 'POST', path: '/admin/tenants', body: strip(tenantBody) },
      { method: 'GET', path: `/admin/tenants/${tenant}`, body: null },
      { method: 'PATCH', path: `/admin/tenants/${tenant}`, body: strip(fc.record({ name: fc.option(fc.constant('renamed'), { nil: undefined }), requests_per_minute: fc.option(num, { nil: undefined }) })) },
      { method: 'DELETE', path: `/admin/tenants/${uniqueTag('gone')}`, body: null },
      { method: 'POST', path: `/admin/tenants/${tenant}/keys`, body: strip(fc.record({ name: fc.option(fc.constant('k'), { nil: undefined }), requests_per_minute: fc.option(num, { nil: undefined }) })) },
      { method: 'GET', path: `/admin/tenants/${tenant}/keys`, body: null },
      { method: 'DELETE', path: `/admin/tenants/${tenant}/keys/key_nonexistent`, body: null },
      { method: 'GET', path: '/admin/models', body: null },
      { method: 'PUT', path: `/admin/models/${model}`, body: strip(fc.record({ default_lambda: fc.option(lam, { nil: undefined }), description: fc.option(fc.constant('d'), { nil: undefined }) })) },
      { method: 'DELETE', path: `/admin/models/${uniqueTag('m')}`, body: null },
      { method: 'PUT', path: `/admin/tenants/${tenant}/models/${model}`, body: fc.constant({}) },
      { method: 'GET', path: `/admin/tenants/${tenant}/models`, body: null },
      { method: 'PUT', path: `/admin/tenants/${tenant}/policies/*`, body: strip(fc.record({ min_lambda: fc.option(lam, { nil: undefined }), max_lambda: fc.option(lam, { nil: undefined }), allow_explicit: fc.option(fc.boolean(), { nil: undefined }), out_of_range: fc.option(fc.constantFrom('clamp', 'reject'), { nil: undefined }) })) },
      { method: 'GET', path: `/admin/tenants/${tenant}/policies`, body: null },
      { method: 'PUT', path: `/admin/tenants/${tenant}/presets/fast`, body: strip(fc.record({ lambda: lam, sampling: fc.option(fc.record({ temperature: fc.double({ min: 0, max: 2, noNaN: true }) }), { nil: undefined }) })) },
      { method: 'DELETE', path: `/admin/tenants/${tenant}/presets/fast`, body: null },
      { method: 'PUT', path: `/admin/tenants/${tenant}/users/alice/preferences`, body: strip(fc.record({ lambda: fc.option(lam, { nil: undefined }), preset: fc.option(fc.constant('fast'), { nil: undefined }) })) },
      { method: 'GET', path: `/admin/tenants/${tenant}/users/alice/preferences`, body: null },
      { method: 'GET', path: '/admin/usage', body: null },
    ];
    const cases = fc.sample(fuzzCase({ routes }), { numRuns: Math.round(1000 * SCALE), seed: SEED + 1 });
    const tally = newTally();
    await runPool(cases, CONCURRENCY, (c, i) => judge(tally, i, c, sender(c, i, key), DEADLINE_MS, requestIdCheck));
    console.log(summary('worker /admin', SEED + 1, tally));
    expect(tally.lost, describeViolations(tally)).toBe(0);
    expect(tally.violations.length, describeViolations(tally)).toBe(0);
    for (const status of ['200', '400', '401', '403', '404']) expect(tally.byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(tally.byStatus)}`).toBeGreaterThan(0);
  });
});
