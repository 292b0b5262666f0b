/**
 * Fuzzing the edge worker's public and admin APIs inside workerd: thousands of random and mutated requests (bodies,
 * headers, query strings, methods, paths, credentials) against every public route — `/v1/*`, health, the playground
 * and the admin API — with the stub backend answering whatever passes validation. Every response must be a non-5xx
 * with OpenAI's error JSON (or a well-formed success), carry a request id, and arrive: nothing lost, nothing hung.
 * The run prints its counts; `REALIGN_FUZZ_SCALE` scales the number of cases and `REALIGN_FUZZ_SEED` replays a run
 * (see helpers/fuzz.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzzCase, validBody, type Route } from '../../test/fuzz/requests.ts';
import { describeViolations, judge, newTally, runPool, summary } from '../../test/fuzz/verdict.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, call } from './helpers/http.ts';
import { uniqueTag } from './helpers/stub.ts';
import { CONCURRENCY, DEADLINE_MS, SCALE, SEED, lambda, requestIdCheck, sender } from './helpers/fuzz.ts';

describe('fuzzing the worker', () => {
  it(
    'public API: random and mutated requests never get a 5xx, always get the error JSON, and none is lost',
    { timeout: 600_000 },
    async () => {
      const t = await makeTenant({
        requestsPerMinute: 1e9,
        tokensPerMinute: 1e12,
        presets: { quick: { lambda: 0.25, sampling: { temperature: 0 } } },
      });
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
      for (const status of ['200', '400', '401', '404'])
        expect(tally.byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(tally.byStatus)}`).toBeGreaterThan(0);

      // the worker still serves a plain request afterwards
      const after = await call('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'still there?' }] }),
      });
      expect(after.status).toBe(200);
    },
  );

  it(
    'admin API: random and mutated admin calls never get a 5xx and always get the error JSON',
    { timeout: 600_000 },
    async () => {
      const tenant = uniqueTag('fuzz-admin');
      await admin('POST', '/tenants', { id: tenant, name: tenant });
      const key = (await admin<{ key: string }>('POST', `/tenants/${tenant}/keys`, { name: 'fuzz' })).key;
      const model = uniqueTag('fuzz-model');
      const num = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constant(0));
      const lam = fc.double({ min: -2, max: 2, noNaN: true });
      const tenantBody = fc.record({
        id: fc.option(fc.constantFrom(uniqueTag('t'), uniqueTag('t')), { nil: undefined }),
        name: fc.constantFrom('a', 'tenant x'),
        requests_per_minute: fc.option(num, { nil: undefined }),
        tokens_per_minute: fc.option(num, { nil: undefined }),
        cache_ttl_seconds: fc.option(fc.constantFrom(0, 60, 30), { nil: undefined }),
      });
      const strip = <T extends Record<string, unknown>>(a: fc.Arbitrary<T>) =>
        a.map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
      const routes: Route[] = [
        { method: 'GET', path: '/admin/tenants', body: null },
        { method: 'POST', path: '/admin/tenants', body: strip(tenantBody) },
        { method: 'GET', path: `/admin/tenants/${tenant}`, body: null },
        {
          method: 'PATCH',
          path: `/admin/tenants/${tenant}`,
          body: strip(
            fc.record({
              name: fc.option(fc.constant('renamed'), { nil: undefined }),
              requests_per_minute: fc.option(num, { nil: undefined }),
            }),
          ),
        },
        { method: 'DELETE', path: `/admin/tenants/${uniqueTag('gone')}`, body: null },
        {
          method: 'POST',
          path: `/admin/tenants/${tenant}/keys`,
          body: strip(
            fc.record({
              name: fc.option(fc.constant('k'), { nil: undefined }),
              requests_per_minute: fc.option(num, { nil: undefined }),
            }),
          ),
        },
        { method: 'GET', path: `/admin/tenants/${tenant}/keys`, body: null },
        { method: 'DELETE', path: `/admin/tenants/${tenant}/keys/key_nonexistent`, body: null },
        { method: 'GET', path: '/admin/models', body: null },
        {
          method: 'PUT',
          path: `/admin/models/${model}`,
          body: strip(
            fc.record({
              default_lambda: fc.option(lam, { nil: undefined }),
              description: fc.option(fc.constant('d'), { nil: undefined }),
            }),
          ),
        },
        { method: 'DELETE', path: `/admin/models/${uniqueTag('m')}`, body: null },
        { method: 'PUT', path: `/admin/tenants/${tenant}/models/${model}`, body: fc.constant({}) },
        { method: 'GET', path: `/admin/tenants/${tenant}/models`, body: null },
        {
          method: 'PUT',
          path: `/admin/tenants/${tenant}/policies/*`,
          body: strip(
            fc.record({
              min_lambda: fc.option(lam, { nil: undefined }),
              max_lambda: fc.option(lam, { nil: undefined }),
              allow_explicit: fc.option(fc.boolean(), { nil: undefined }),
              out_of_range: fc.option(fc.constantFrom('clamp', 'reject'), { nil: undefined }),
            }),
          ),
        },
        { method: 'GET', path: `/admin/tenants/${tenant}/policies`, body: null },
        {
          method: 'PUT',
          path: `/admin/tenants/${tenant}/presets/fast`,
          body: strip(
            fc.record({
              lambda: lam,
              sampling: fc.option(fc.record({ temperature: fc.double({ min: 0, max: 2, noNaN: true }) }), { nil: undefined }),
            }),
          ),
        },
        { method: 'DELETE', path: `/admin/tenants/${tenant}/presets/fast`, body: null },
        {
          method: 'PUT',
          path: `/admin/tenants/${tenant}/users/alice/preferences`,
          body: strip(
            fc.record({ lambda: fc.option(lam, { nil: undefined }), preset: fc.option(fc.constant('fast'), { nil: undefined }) }),
          ),
        },
        { method: 'GET', path: `/admin/tenants/${tenant}/users/alice/preferences`, body: null },
        { method: 'GET', path: '/admin/usage', body: null },
      ];
      const cases = fc.sample(fuzzCase({ routes }), { numRuns: Math.round(1000 * SCALE), seed: SEED + 1 });
      const tally = newTally();
      await runPool(cases, CONCURRENCY, (c, i) => judge(tally, i, c, sender(c, i, key), DEADLINE_MS, requestIdCheck));
      console.log(summary('worker /admin', SEED + 1, tally));
      expect(tally.lost, describeViolations(tally)).toBe(0);
      expect(tally.violations.length, describeViolations(tally)).toBe(0);
      for (const status of ['200', '400', '401', '403', '404'])
        expect(tally.byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(tally.byStatus)}`).toBeGreaterThan(0);
    },
  );
});
