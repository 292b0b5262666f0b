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
import { describeViolations, errorBodyProblems, judge, newTally, runPool, summary } from '../../test/fuzz/verdict.ts';
import { DEFAULT_MAX_LOGITS_ENTRIES, logitsAnswerEntries } from '../../shared/src/logits-bounds.ts';
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

  it('tenant lifecycle: nothing of a deleted tenant generation is ever visible to the next one', { timeout: 600_000 }, async () => {
    const seed = SEED + 2;
    const report = await lifecycleFuzz(seed, Math.max(2, Math.round(14 * SCALE)), 30);
    console.log(`[fuzz worker tenant lifecycle] seed=${seed} sequences=${report.sequences} operations=${report.operations} by status {${statusText(report.byStatus)}} recreated=${report.recreated} hits=${report.hits} violations=${report.violations.length}`);
    expect(report.violations.slice(0, 5), report.violations.slice(0, 5).join('\n')).toEqual([]);
    expect(report.recreated, 'the sequences re-created tenant ids').toBeGreaterThan(0);
    expect(report.hits, 'every sequence reaches the cache at least once').toBeGreaterThanOrEqual(report.sequences);
  });

  it('logits size: random positions × λ × top_logprobs × branches are served or refused by the bound, and charged by size', { timeout: 600_000 }, async () => {
    const seed = SEED + 3;
    const C = 1e12;
    const t = await makeTenant({ requestsPerMinute: 1e9, tokensPerMinute: C, policy: { min_lambda: -2, max_lambda: 2 } });
    const shape = fc.record({
      inputLength: fc.integer({ min: 1, max: 4000 }),
      positions: fc.constantFrom('last' as const, 'all' as const),
      lambdas: fc.integer({ min: 1, max: 32 }),
      top: fc.integer({ min: 1, max: 100 }),
      branches: fc.boolean(),
    });
    const cases = fc.sample(shape, { numRuns: Math.round(300 * SCALE), seed });
    const byStatus: Record<string, number> = {};
    const violations: string[] = [];
    let remainingBefore = C;
    for (const [i, c] of cases.entries()) {
      const body = { model: t.model, input_ids: Array.from({ length: c.inputLength }, (_, k) => k % 1000), positions: c.positions, top_logprobs: c.top, lambdas: Array.from({ length: c.lambdas }, (_, k) => k / 32), include_branches: c.branches };
      const res = await direct('/v1/logits', { method: 'POST', headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const text = await res.text();
      const entries = logitsAnswerEntries({ positions: c.positions === 'all' ? c.inputLength : 1, lambdas: c.lambdas, topLogprobs: c.top, includeBranches: c.branches });
      const over = entries > DEFAULT_MAX_LOGITS_ENTRIES;
      if (over ? res.status !== 400 || !text.includes('logits_answer_too_large') : res.status !== 200) violations.push(`#${i} ${JSON.stringify(c)} (${entries} entries) → ${res.status} ${text.slice(0, 160)}`);
      if (res.status === 200) {
        // the admission charge includes one token per answer entry (the header reports the bucket after it)
        const left = Number(res.headers.get('x-ratelimit-remaining-tokens'));
        if (!(left <= remainingBefore - entries)) violations.push(`#${i} ${JSON.stringify(c)}: charged ${remainingBefore - left} for ${entries} entries`);
      }
      if (res.status >= 400) violations.push(...errorBodyProblems(res.status, res.headers.get('content-type') ?? '', text).filter(() => !over).map((p) => `#${i}: ${p}`));
      // the bucket refills between requests: re-read it from a request too small to matter
      remainingBefore = C;
    }
    console.log(`[fuzz worker logits size] seed=${seed} tried=${cases.length} by status {${statusText(byStatus)}} violations=${violations.length}`);
    expect(violations.slice(0, 5), violations.slice(0, 5).join('\n')).toEqual([]);
    for (const status of ['200', '400']) expect(byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(byStatus)}`).toBeGreaterThan(0);
  });
  it('parameter combinations: a refused request is refused before anything is stored or charged, an accepted one has its usage row', { timeout: 600_000 }, async () => {
    const seed = SEED + 4;
    const t = await makeTenant({
      requestsPerMinute: 1e9,
      tokensPerMinute: 50_000,
      policy: { min_lambda: -1, max_lambda: 2, out_of_range: 'reject' },
      presets: { deep: { lambda: -0.5, sampling: { max_tokens: 2048 } }, quick: { lambda: 1, sampling: { temperature: 0 } } },
    });
    const k = await admin<{ key: string }>('POST', `/tenants/${t.tenantId}/keys`, { user: 'alice', tokens_per_minute: 20_000 });
    // most fields unset in a case, so that accepted and refused combinations both occur
    const edge = <T>(values: T[]) => fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...values) });
    const combo = fc.record({
      kind: fc.constantFrom('chat' as const, 'completions' as const),
      model: fc.constantFrom(t.model, t.model, t.model, 'no-such-model'),
      max_tokens: edge([1, 8, 256, 19_000, 30_000, 60_000, 2 ** 20, 2 ** 20 + 1, 2 ** 53 - 1, 0, -1, 1.5]),
      n: edge([1, 2, 128, 129, 0]),
      temperature: edge([0, 0.7, 2, 2.5, -0.1]),
      top_p: edge([1, 0.5, 0, 1.1]),
      top_k: edge([-1, 0, 1, 50, -2]),
      min_p: edge([0, 0.9, 1, 1.1]),
      repetition_penalty: edge([1, 0.01, 100, 1e-300, 0, 101]),
      presence_penalty: edge([-2, 0, 2, 2.1]),
      lambda: edge([-1, 0, 0.5, 2, 2.5, -1.5]),
      preset: edge(['deep', 'quick', 'missing']),
      user: edge(['alice', 'bob']),
      stream: fc.boolean(),
      bound: fc.boolean(),
    });
    const cases = fc.sample(combo, { numRuns: Math.round(300 * SCALE), seed });
    const byStatus: Record<string, number> = {};
    const violations: string[] = [];
    for (const [i, c] of cases.entries()) {
      const { kind, bound: useBound, ...fields } = c;
      const body = { ...(kind === 'chat' ? { messages: [{ role: 'user', content: `combination ${i}` }] } : { prompt: `combination ${i}` }), ...fields };
      const res = await direct(kind === 'chat' ? '/v1/chat/completions' : '/v1/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${useBound ? k.key : t.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const id = res.headers.get('x-request-id')!;
      const row = await env.DB.prepare('SELECT status FROM usage WHERE request_id = ?').bind(id).first<{ status: number }>();
      const where = `#${i} ${JSON.stringify(c)} → ${res.status} ${text.slice(0, 160)}`;
      if (res.status >= 500) violations.push(`${where}: a 5xx`);
      if (res.status >= 400) violations.push(...errorBodyProblems(res.status, res.headers.get('content-type') ?? '', text).map((p) => `${where}: ${p}`));
      if (res.status === 200 && row === null) violations.push(`${where}: no usage row`);
      // every refusal here comes from the edge's own validation: nothing may be stored, and the limiter is asked only
      // by the last check (429, or exceeds_token_limit for a cost above a whole bucket, which charges nothing)
      if (res.status >= 400 && row !== null) violations.push(`${where}: a refused request has a usage row`);
      const byLimiter = res.status === 429 || text.includes('"exceeds_token_limit"');
      if (res.status >= 400 && !byLimiter && res.headers.get('x-ratelimit-remaining-requests') !== null) violations.push(`${where}: refused after the rate limiter was asked`);
    }
    console.log(`[fuzz worker parameter combinations] seed=${seed} tried=${cases.length} by status {${statusText(byStatus)}} violations=${violations.length}`);
    expect(violations.slice(0, 5), violations.slice(0, 5).join('\n')).toEqual([]);
    for (const status of ['200', '400', '403', '404']) expect(byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(byStatus)}`).toBeGreaterThan(0);
  });
});

const statusText = (byStatus: Record<string, number>) =>
  Object.entries(byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');

/** One step of a tenant-lifecycle sequence; `t` picks one of the sequence's two tenant ids. */
type LifeOp =
  | { op: 'create'; t: number; rpm: number }
  | { op: 'delete'; t: number }
  | { op: 'recreate'; t: number; rpm: number }
  | { op: 'key'; t: number; bound: boolean }
  | { op: 'grant'; t: number }
  | { op: 'revoke'; t: number }
  | { op: 'policy'; t: number; perModel: boolean; min: number | null; max: number | null }
  | { op: 'unpolicy'; t: number; perModel: boolean }
  | { op: 'request'; t: number; question: number; lambda: number | null; stream: boolean; user: boolean };

const tIndex = fc.integer({ min: 0, max: 1 });
const bound = fc.option(fc.constantFrom(-1, -0.5, 0, 0.25, 0.5, 0.8, 0.9, 1, 1.5, 2), { nil: null });
const lifeOp: fc.Arbitrary<LifeOp> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('create' as const), t: tIndex, rpm: fc.integer({ min: 2, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), t: tIndex }) },
  // a re-creation is mostly followed by a key and a grant, so the new generation gets to send requests
  {
    weight: 2,
    arbitrary: fc.record({ t: tIndex, rpm: fc.integer({ min: 2, max: 5 }) }).map(({ t, rpm }) => ({ op: 'recreate' as const, t, rpm })),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('key' as const), t: tIndex, bound: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('grant' as const), t: tIndex }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('revoke' as const), t: tIndex }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('policy' as const), t: tIndex, perModel: fc.boolean(), min: bound, max: bound }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unpolicy' as const), t: tIndex, perModel: fc.boolean() }) },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('request' as const), t: tIndex, question: fc.integer({ min: 0, max: 1 }), lambda: fc.option(fc.constantFrom(0.5, 1.7), { nil: null, freq: 3 }), stream: fc.boolean(), user: fc.boolean() }),
  },
);

/** What the test knows of one tenant id: whether it exists, its generation number, its keys, its grant. */
interface Life {
  id: string;
  exists: boolean;
  generation: number;
  keys: { key: string; bound: boolean }[];
  granted: boolean;
  rpm: number;
  /** requests of this generation the limiter admitted (answered 200) */
  admitted: number;
  /** keys of deleted generations */
  oldKeys: string[];
  everCreated: boolean;
}

/** A completion id seen in an answer, with the tenant and generation it was made for. */
type Seen = Map<string, { id: string; generation: number }>;

async function directJson(method: string, path: string, body?: unknown, key = ADMIN_TOKEN): Promise<{ status: number; json: Record<string, unknown>; res: Response; text: string }> {
  const res = await direct(path, { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = {};
  }
  return { status: res.status, json, res, text };
}

/**
 * Runs `sequences` random sequences of `length` lifecycle steps (create, delete and re-create tenant ids, keys —
 * some bound to a user — grants, tenant-wide and per-model λ policies, cached and streamed requests) and checks
 * after every step: no 5xx; no answer carries a completion id first served to another tenant or to an earlier
 * generation of the same id (no cache HIT across generations); a re-created tenant has no usage rows and its
 * first requests are not refused by a predecessor's rate-limit debt; usage rows of the current generation are
 * exactly its requests that reached the backend; a policy write that was accepted never leaves an empty λ range.
 */
async function lifecycleFuzz(seed: number, sequences: number, length: number) {
  // every sequence starts with both tenants usable, a cache HIT for tenant 0, then tenant 0 re-created and asked again
  const ask: LifeOp = { op: 'request', t: 0, question: 0, lambda: null, stream: false, user: false };
  const start: LifeOp[] = [
    ...[0, 1].flatMap((t) => [{ op: 'create', t, rpm: 4 }, { op: 'key', t, bound: false }, { op: 'grant', t }] as LifeOp[]),
    ask,
    ask,
    { op: 'recreate', t: 0, rpm: 4 },
    ask,
  ];
  const expand = (o: LifeOp): LifeOp[] => (o.op === 'recreate' ? [{ op: 'delete', t: o.t }, { op: 'create', t: o.t, rpm: o.rpm }, { op: 'key', t: o.t, bound: false }, { op: 'grant', t: o.t }] : [o]);
  const plans = fc.sample(fc.array(lifeOp, { minLength: length, maxLength: length }), { numRuns: sequences, seed }).map((p) => [...start, ...p].flatMap(expand));
  const byStatus: Record<string, number> = {};
  const violations: string[] = [];
  const seen: Seen = new Map();
  let operations = 0;
  let recreated = 0;
  let hits = 0;
  for (const [run, plan] of plans.entries()) {
    const model = uniqueTag('life-model');
    await directJson('PUT', `/admin/models/${model}`, {});
    const lives: Life[] = [0, 1].map((i) => ({ id: `${uniqueTag('life')}-${run}-${i}`, exists: false, generation: 0, keys: [], granted: false, rpm: 0, admitted: 0, oldKeys: [], everCreated: false }));
    const usageOf = async (l: Life) => {
      const r = await directJson('GET', `/admin/usage?tenant=${l.id}`);
      return ((r.json.data as { requests: number }[] | undefined) ?? []).reduce((s, line) => s + line.requests, 0);
    };
    let served = [0, 0];
    for (const [step, op] of plan.entries()) {
      operations++;
      const l = lives[op.t]!;
      const where = `seq ${run} step ${step} ${JSON.stringify(op)}`;
      let r: Awaited<ReturnType<typeof directJson>> | null = null;
      switch (op.op) {
        case 'create':
          r = await directJson('POST', '/admin/tenants', { id: l.id, name: l.id, requests_per_minute: op.rpm, tokens_per_minute: 1e9, cache_ttl_seconds: 600 });
          if (r.status === 201) {
            if (l.exists) violations.push(`${where}: created an existing tenant`);
            if (l.everCreated) recreated++;
            Object.assign(l, { exists: true, everCreated: true, generation: l.generation + 1, keys: [], granted: false, rpm: op.rpm, admitted: 0 });
            served[op.t] = 0;
            if ((await usageOf(l)) !== 0) violations.push(`${where}: a new generation sees usage rows of a deleted one`);
            for (const old of l.oldKeys.slice(-2)) {
              const o = await directJson('POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'old key' }] }, old);
              if (o.status !== 401) violations.push(`${where}: a key of a deleted generation → ${o.status}`);
            }
          } else if (!l.exists) violations.push(`${where}: create → ${r.status} ${r.text.slice(0, 120)}`);
          break;
        case 'delete':
          r = await directJson('DELETE', `/admin/tenants/${l.id}`);
          if ((r.status === 200) !== l.exists) violations.push(`${where}: delete → ${r.status} while exists=${l.exists}`);
          if (r.status === 200) {
            l.oldKeys.push(...l.keys.map((k) => k.key));
            Object.assign(l, { exists: false, keys: [], granted: false });
          }
          break;
        case 'key':
          r = await directJson('POST', `/admin/tenants/${l.id}/keys`, op.bound ? { user: 'alice' } : {});
          if ((r.status === 201) !== l.exists) violations.push(`${where}: key → ${r.status} while exists=${l.exists}`);
          if (r.status === 201) l.keys.push({ key: r.json.key as string, bound: op.bound });
          break;
        case 'grant':
          r = await directJson('PUT', `/admin/tenants/${l.id}/models/${model}`);
          if ((r.status === 200) !== l.exists) violations.push(`${where}: grant → ${r.status} while exists=${l.exists}`);
          if (r.status === 200) l.granted = true;
          break;
        case 'revoke':
          r = await directJson('DELETE', `/admin/tenants/${l.id}/models/${model}`);
          if ((r.status === 200) !== (l.exists && l.granted)) violations.push(`${where}: revoke → ${r.status} while granted=${l.granted}`);
          if (r.status === 200) l.granted = false;
          break;
        case 'policy':
        case 'unpolicy': {
          const target = op.perModel ? model : '*';
          r = op.op === 'policy' ? await directJson('PUT', `/admin/tenants/${l.id}/policies/${target}`, { min_lambda: op.min, max_lambda: op.max }) : await directJson('DELETE', `/admin/tenants/${l.id}/policies/${target}`);
          if (r.status === 200 && l.keys.length > 0) {
            const p = await directJson('GET', `/v1/presets?model=${model}`, undefined, l.keys[0]!.key);
            const range = p.json.lambda_range as { min: number; max: number } | undefined;
            if (range && !(range.min <= range.max)) violations.push(`${where}: accepted a write that left the range [${range.min}, ${range.max}]`);
          }
          break;
        }
        case 'request': {
          const k = l.keys.at(-1);
          const body = { model, messages: [{ role: 'user', content: `lifecycle question ${op.question}` }], temperature: 0, max_tokens: 8, ...(op.lambda === null ? {} : { lambda: op.lambda }), ...(op.stream ? { stream: true } : {}), ...(op.user ? { user: 'bob' } : {}) };
          r = await directJson('POST', '/v1/chat/completions', body, k?.key ?? 'rk_nobody');
          if (!l.exists || k === undefined) {
            if (r.status !== 401) violations.push(`${where}: a request without a live key → ${r.status}`);
            break;
          }
          if (r.status === 429 && l.admitted < l.rpm) violations.push(`${where}: 429 after ${l.admitted} of ${l.rpm} requests of this generation (debt carried over?)`);
          if (r.status === 200) {
            l.admitted++;
            served[op.t]!++;
            if (r.res.headers.get('x-realign-cache') === 'HIT') hits++;
            const ids = op.stream ? [...r.text.matchAll(/"id":"([^"]+)"/g)].map((m) => m[1]!) : [r.json.id as string];
            for (const cid of new Set(ids)) {
              const first = seen.get(cid);
              if (first === undefined) seen.set(cid, { id: l.id, generation: l.generation });
              else if (first.id !== l.id || first.generation !== l.generation) violations.push(`${where}: served ${cid}, first made for ${first.id} generation ${first.generation}`);
            }
          }
          if (r.status === 403 && !(k.bound && op.user)) violations.push(`${where}: 403 ${r.text.slice(0, 120)}`);
          break;
        }
      }
      if (r !== null) {
        byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
        if (r.status >= 500) violations.push(`${where}: ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status >= 400) for (const p of errorBodyProblems(r.status, r.res.headers.get('content-type') ?? '', r.text)) violations.push(`${where}: ${p}`);
      }
    }
    for (const [i, l] of lives.entries()) {
      if (l.exists && (await usageOf(l)) !== served[i]) violations.push(`seq ${run}: tenant ${l.id} generation ${l.generation} has ${await usageOf(l)} usage rows for ${served[i]} served requests`);
    }
    served = [0, 0];
  }
  return { sequences, operations, byStatus, violations, recreated, hits };
}
