/**
 * Fuzzing tenant lifecycles at the edge worker inside workerd: random sequences of creating, deleting and re-creating
 * tenants and using their keys; nothing of a deleted tenant generation may be visible to the next one.
 * The run prints its counts; `REALIGN_FUZZ_SCALE` scales the number of cases and `REALIGN_FUZZ_SEED` replays a run
 * (see helpers/fuzz.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorBodyProblems } from '../../test/fuzz/verdict.ts';
import { eventually } from './helpers/eventually.ts';
import { ADMIN_TOKEN } from './helpers/http.ts';
import { uniqueTag } from './helpers/stub.ts';
import { SCALE, SEED, direct, statusText } from './helpers/fuzz.ts';

describe('fuzzing the worker', () => {
  it(
    'tenant lifecycle: nothing of a deleted tenant generation is ever visible to the next one',
    { timeout: 600_000 },
    async () => {
      const seed = SEED + 2;
      const report = await lifecycleFuzz(seed, Math.max(2, Math.round(14 * SCALE)), 30);
      console.log(
        `[fuzz worker tenant lifecycle] seed=${seed} sequences=${report.sequences} operations=${report.operations} by status {${statusText(report.byStatus)}} recreated=${report.recreated} hits=${report.hits} violations=${report.violations.length}`,
      );
      expect(report.violations.slice(0, 5), report.violations.slice(0, 5).join('\n')).toEqual([]);
      expect(report.recreated, 'the sequences re-created tenant ids').toBeGreaterThan(0);
      expect(report.hits, 'every sequence reaches the cache at least once').toBeGreaterThanOrEqual(report.sequences);
    },
  );
});

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
    arbitrary: fc
      .record({ t: tIndex, rpm: fc.integer({ min: 2, max: 5 }) })
      .map(({ t, rpm }) => ({ op: 'recreate' as const, t, rpm })),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('key' as const), t: tIndex, bound: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('grant' as const), t: tIndex }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('revoke' as const), t: tIndex }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('policy' as const), t: tIndex, perModel: fc.boolean(), min: bound, max: bound }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unpolicy' as const), t: tIndex, perModel: fc.boolean() }) },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('request' as const),
      t: tIndex,
      question: fc.integer({ min: 0, max: 1 }),
      lambda: fc.option(fc.constantFrom(0.5, 1.7), { nil: null, freq: 3 }),
      stream: fc.boolean(),
      user: fc.boolean(),
    }),
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

async function directJson(
  method: string,
  path: string,
  body?: unknown,
  key = ADMIN_TOKEN,
): Promise<{ status: number; json: Record<string, unknown>; res: Response; text: string }> {
  const res = await direct(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
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
    ...[0, 1].flatMap(
      (t) =>
        [
          { op: 'create', t, rpm: 4 },
          { op: 'key', t, bound: false },
          { op: 'grant', t },
        ] as LifeOp[],
    ),
    ask,
    ask,
    { op: 'recreate', t: 0, rpm: 4 },
    ask,
  ];
  const expand = (o: LifeOp): LifeOp[] =>
    o.op === 'recreate'
      ? [
          { op: 'delete', t: o.t },
          { op: 'create', t: o.t, rpm: o.rpm },
          { op: 'key', t: o.t, bound: false },
          { op: 'grant', t: o.t },
        ]
      : [o];
  const plans = fc
    .sample(fc.array(lifeOp, { minLength: length, maxLength: length }), { numRuns: sequences, seed })
    .map((p) => [...start, ...p].flatMap(expand));
  const byStatus: Record<string, number> = {};
  const violations: string[] = [];
  const seen: Seen = new Map();
  let operations = 0;
  let recreated = 0;
  let hits = 0;
  for (const [run, plan] of plans.entries()) {
    const model = uniqueTag('life-model');
    await directJson('PUT', `/admin/models/${model}`, {});
    const lives: Life[] = [0, 1].map((i) => ({
      id: `${uniqueTag('life')}-${run}-${i}`,
      exists: false,
      generation: 0,
      keys: [],
      granted: false,
      rpm: 0,
      admitted: 0,
      oldKeys: [],
      everCreated: false,
    }));
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
          r = await directJson('POST', '/admin/tenants', {
            id: l.id,
            name: l.id,
            requests_per_minute: op.rpm,
            tokens_per_minute: 1e9,
            cache_ttl_seconds: 600,
          });
          if (r.status === 201) {
            if (l.exists) violations.push(`${where}: created an existing tenant`);
            if (l.everCreated) recreated++;
            Object.assign(l, {
              exists: true,
              everCreated: true,
              generation: l.generation + 1,
              keys: [],
              granted: false,
              rpm: op.rpm,
              admitted: 0,
            });
            served[op.t] = 0;
            if ((await usageOf(l)) !== 0) violations.push(`${where}: a new generation sees usage rows of a deleted one`);
            for (const old of l.oldKeys.slice(-2)) {
              const o = await directJson(
                'POST',
                '/v1/chat/completions',
                { model, messages: [{ role: 'user', content: 'old key' }] },
                old,
              );
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
          if ((r.status === 200) !== (l.exists && l.granted))
            violations.push(`${where}: revoke → ${r.status} while granted=${l.granted}`);
          if (r.status === 200) l.granted = false;
          break;
        case 'policy':
        case 'unpolicy': {
          const target = op.perModel ? model : '*';
          r =
            op.op === 'policy'
              ? await directJson('PUT', `/admin/tenants/${l.id}/policies/${target}`, { min_lambda: op.min, max_lambda: op.max })
              : await directJson('DELETE', `/admin/tenants/${l.id}/policies/${target}`);
          if (r.status === 200 && l.keys.length > 0) {
            const p = await directJson('GET', `/v1/presets?model=${model}`, undefined, l.keys[0]!.key);
            const range = p.json.lambda_range as { min: number; max: number } | undefined;
            if (range && !(range.min <= range.max))
              violations.push(`${where}: accepted a write that left the range [${range.min}, ${range.max}]`);
          }
          break;
        }
        case 'request': {
          const k = l.keys.at(-1);
          const body = {
            model,
            messages: [{ role: 'user', content: `lifecycle question ${op.question}` }],
            temperature: 0,
            max_tokens: 8,
            ...(op.lambda === null ? {} : { lambda: op.lambda }),
            ...(op.stream ? { stream: true } : {}),
            ...(op.user ? { user: 'bob' } : {}),
          };
          r = await directJson('POST', '/v1/chat/completions', body, k?.key ?? 'rk_nobody');
          if (!l.exists || k === undefined) {
            if (r.status !== 401) violations.push(`${where}: a request without a live key → ${r.status}`);
            break;
          }
          if (r.status === 429 && l.admitted < l.rpm)
            violations.push(`${where}: 429 after ${l.admitted} of ${l.rpm} requests of this generation (debt carried over?)`);
          if (r.status === 200) {
            l.admitted++;
            served[op.t]!++;
            if (r.res.headers.get('x-realign-cache') === 'HIT') hits++;
            const ids = op.stream ? [...r.text.matchAll(/"id":"([^"]+)"/g)].map((m) => m[1]!) : [r.json.id as string];
            for (const cid of new Set(ids)) {
              const first = seen.get(cid);
              if (first === undefined) seen.set(cid, { id: l.id, generation: l.generation });
              else if (first.id !== l.id || first.generation !== l.generation)
                violations.push(`${where}: served ${cid}, first made for ${first.id} generation ${first.generation}`);
            }
          }
          if (r.status === 403 && !(k.bound && op.user)) violations.push(`${where}: 403 ${r.text.slice(0, 120)}`);
          break;
        }
      }
      if (r !== null) {
        byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
        if (r.status >= 500) violations.push(`${where}: ${r.status} ${r.text.slice(0, 200)}`);
        if (r.status >= 400)
          for (const p of errorBodyProblems(r.status, r.res.headers.get('content-type') ?? '', r.text))
            violations.push(`${where}: ${p}`);
      }
    }
    for (const [i, l] of lives.entries()) {
      if (!l.exists) continue;
      // usage rows come through the usage queue (a batch timeout after the answers): wait for them, then count
      const rows = await eventually(
        'usage rows',
        async () => {
          const n = await usageOf(l);
          return n === served[i] ? n : null;
        },
        10_000,
      ).catch(() => usageOf(l));
      if (rows !== served[i])
        violations.push(
          `seq ${run}: tenant ${l.id} generation ${l.generation} has ${rows} usage rows for ${served[i]} served requests`,
        );
    }
    served = [0, 0];
  }
  return { sequences, operations, byStatus, violations, recreated, hits };
}
