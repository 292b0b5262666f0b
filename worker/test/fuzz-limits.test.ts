/**
 * Fuzzing the edge worker's bounds inside workerd: /v1/logits answer size (positions × λ × top_logprobs × branches)
 * and random parameter combinations, served or refused before anything is stored or charged.
 * The run prints its counts; `REALIGN_FUZZ_SCALE` scales the number of cases and `REALIGN_FUZZ_SEED` replays a run
 * (see helpers/fuzz.ts).
 */
import fc from 'fast-check';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { errorBodyProblems } from '../../test/fuzz/verdict.ts';
import { DEFAULT_MAX_LOGITS_ENTRIES, logitsAnswerEntries } from '../../shared/src/logits-bounds.ts';
import { eventually } from './helpers/eventually.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { admin } from './helpers/http.ts';
import { SCALE, SEED, direct, statusText } from './helpers/fuzz.ts';

describe('fuzzing the worker', () => {
  it(
    'logits size: random positions × λ × top_logprobs × branches are served or refused by the bound, and charged by size',
    { timeout: 600_000 },
    async () => {
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
        const body = {
          model: t.model,
          input_ids: Array.from({ length: c.inputLength }, (_, k) => k % 1000),
          positions: c.positions,
          top_logprobs: c.top,
          lambdas: Array.from({ length: c.lambdas }, (_, k) => k / 32),
          include_branches: c.branches,
        };
        const res = await direct('/v1/logits', {
          method: 'POST',
          headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
        const text = await res.text();
        const entries = logitsAnswerEntries({
          positions: c.positions === 'all' ? c.inputLength : 1,
          lambdas: c.lambdas,
          topLogprobs: c.top,
          includeBranches: c.branches,
        });
        const over = entries > DEFAULT_MAX_LOGITS_ENTRIES;
        if (over ? res.status !== 400 || !text.includes('logits_answer_too_large') : res.status !== 200)
          violations.push(`#${i} ${JSON.stringify(c)} (${entries} entries) → ${res.status} ${text.slice(0, 160)}`);
        if (res.status === 200) {
          // the admission charge includes one token per answer entry (the header reports the bucket after it)
          const left = Number(res.headers.get('x-ratelimit-remaining-tokens'));
          if (!(left <= remainingBefore - entries))
            violations.push(`#${i} ${JSON.stringify(c)}: charged ${remainingBefore - left} for ${entries} entries`);
        }
        if (res.status >= 400)
          violations.push(
            ...errorBodyProblems(res.status, res.headers.get('content-type') ?? '', text)
              .filter(() => !over)
              .map((p) => `#${i}: ${p}`),
          );
        // the bucket refills between requests: re-read it from a request too small to matter
        remainingBefore = C;
      }
      console.log(
        `[fuzz worker logits size] seed=${seed} tried=${cases.length} by status {${statusText(byStatus)}} violations=${violations.length}`,
      );
      expect(violations.slice(0, 5), violations.slice(0, 5).join('\n')).toEqual([]);
      for (const status of ['200', '400'])
        expect(byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(byStatus)}`).toBeGreaterThan(0);
    },
  );
  it(
    'parameter combinations: a refused request is refused before anything is stored or charged, an accepted one has its usage row',
    { timeout: 600_000 },
    async () => {
      const seed = SEED + 4;
      const t = await makeTenant({
        requestsPerMinute: 1e9,
        tokensPerMinute: 50_000,
        policy: { min_lambda: -1, max_lambda: 2, out_of_range: 'reject' },
        presets: { deep: { lambda: -0.5, sampling: { max_tokens: 2048 } }, quick: { lambda: 1, sampling: { temperature: 0 } } },
      });
      const k = await admin<{ key: string }>('POST', `/tenants/${t.tenantId}/keys`, { user: 'alice', tokens_per_minute: 20_000 });
      // most fields unset in a case, so that accepted and refused combinations both occur
      const edge = <T>(values: T[]) =>
        fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...values) });
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
      /** Requests whose usage row must appear (200s) or must never appear (refusals); rows come through the usage queue. */
      const mustHaveRow: { id: string; where: string }[] = [];
      const mustHaveNoRow: { id: string; where: string }[] = [];
      for (const [i, c] of cases.entries()) {
        const { kind, bound: useBound, ...fields } = c;
        const body = {
          ...(kind === 'chat' ? { messages: [{ role: 'user', content: `combination ${i}` }] } : { prompt: `combination ${i}` }),
          ...fields,
        };
        const res = await direct(kind === 'chat' ? '/v1/chat/completions' : '/v1/completions', {
          method: 'POST',
          headers: { authorization: `Bearer ${useBound ? k.key : t.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
        const id = res.headers.get('x-request-id')!;
        const where = `#${i} ${JSON.stringify(c)} → ${res.status} ${text.slice(0, 160)}`;
        if (res.status >= 500) violations.push(`${where}: a 5xx`);
        if (res.status >= 400)
          violations.push(
            ...errorBodyProblems(res.status, res.headers.get('content-type') ?? '', text).map((p) => `${where}: ${p}`),
          );
        if (res.status === 200) mustHaveRow.push({ id, where });
        // every refusal here comes from the edge's own validation: nothing may be stored, and the limiter is asked only
        // by the last check (429, or exceeds_token_limit for a cost above a whole bucket, which charges nothing)
        if (res.status >= 400) mustHaveNoRow.push({ id, where });
        const byLimiter = res.status === 429 || text.includes('"exceeds_token_limit"');
        if (res.status >= 400 && !byLimiter && res.headers.get('x-ratelimit-remaining-requests') !== null)
          violations.push(`${where}: refused after the rate limiter was asked`);
      }
      // the usage consumer writes rows a batch timeout after the answers: wait for the 200s' rows, then look
      const rowOf = (id: string) => env.DB.prepare('SELECT status FROM usage WHERE request_id = ?').bind(id).first();
      const missing = async () =>
        (await Promise.all(mustHaveRow.map(async (r) => ((await rowOf(r.id)) === null ? r : null)))).filter((r) => r !== null);
      await eventually(
        'usage rows of the answered requests',
        async () => ((await missing()).length === 0 ? true : null),
        15_000,
      ).catch(() => undefined);
      for (const r of await missing()) violations.push(`${r.where}: no usage row`);
      for (const r of mustHaveNoRow)
        if ((await rowOf(r.id)) !== null) violations.push(`${r.where}: a refused request has a usage row`);
      console.log(
        `[fuzz worker parameter combinations] seed=${seed} tried=${cases.length} by status {${statusText(byStatus)}} violations=${violations.length}`,
      );
      expect(violations.slice(0, 5), violations.slice(0, 5).join('\n')).toEqual([]);
      for (const status of ['200', '400', '403', '404'])
        expect(byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(byStatus)}`).toBeGreaterThan(0);
    },
  );
});
