/**
 * Fuzzing the GPU backend's HTTP API: a real server (in-process, loopback) on two tiny models, thousands of random
 * and mutated requests to every route — bodies, headers, query strings, methods, paths, bearer tokens and edge
 * signatures (valid, wrong, malformed) — and then raw HTTP with broken framing. Limits are set small
 * (max_tokens 8, context 64) so that the requests that stay valid are cheap to serve for real. Every response must
 * be a non-5xx with OpenAI's error JSON or a well-formed success, nothing may be lost or hang, the server must keep
 * serving, and the engines must be empty afterwards. `REALIGN_FUZZ_SCALE` scales the counts (`npm run soak`);
 * `REALIGN_FUZZ_SEED` replays a run.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { signRequest } from '../../../shared/src/signing.ts';
import { LOGITS_ENTRY_WIRE_BYTES } from '../../../shared/src/logits-bounds.ts';
import { rawMutation, rawRequest, sendRaw, stalledRequests } from '../../fuzz/raw-http.ts';
import { fuzzCase, validBody, type AuthMode, type FuzzCase, type Route } from '../../fuzz/requests.ts';
import { describeViolations, errorBodyProblems, judge, newTally, runPool, summary } from '../../fuzz/verdict.ts';
import { startTestBackend, TEST_SECRET, TEST_TOKEN } from '../helpers/backend.ts';
import { tinyInra, tinyModel } from '../helpers/engine.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const SCALE = Math.max(0.1, Number(process.env.REALIGN_FUZZ_SCALE ?? '1') || 1);
const SEED = process.env.REALIGN_FUZZ_SEED ? Number(process.env.REALIGN_FUZZ_SEED) : testSeed();
const DEADLINE_MS = 15_000;
const LIMITS = {
  max_body_bytes: 16 * 1024,
  max_tokens: 8,
  default_max_tokens: 4,
  max_n: 2,
  max_stop: 4,
  max_prompt_tokens: 48,
  max_logits_entries: 2000,
  body_timeout_ms: 1000,
};
let backend: RunningBackend;

beforeAll(async () => {
  backend = await startTestBackend(
    [
      { id: 'inra', mode: 'inra', model: tinyInra(SEED), default_lambda: 0.5, lambda_range: [-1, 2], max_context: 64 },
      { id: 'plain', mode: 'single', model: tinyModel(SEED + 1), max_context: 64 },
    ],
    { limits: LIMITS },
  );
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

/** Headers for a case's credentials: the bearer token, an edge signature over exactly what is sent, or faults. */
async function credentials(c: FuzzCase, url: URL, index: number): Promise<Record<string, string>> {
  const parts = { method: c.method, path: url.pathname + url.search, body: c.body ?? '' };
  const mode: AuthMode = c.auth;
  switch (mode) {
    case 'valid':
      return index % 3 === 0 ? { ...(await signRequest(TEST_SECRET, parts)) } : { authorization: `Bearer ${TEST_TOKEN}` };
    case 'alt':
      return { ...(await signRequest(TEST_SECRET, parts, { now: Date.now() - 3_600_000 })) };
    case 'wrong':
      return index % 2 === 0 ? { authorization: `Bearer ${TEST_TOKEN}x` } : { ...(await signRequest('not-the-secret', parts)) };
    case 'malformed':
      return index % 2 === 0 ? { authorization: 'Bearer' } : { 'x-realign-signature': 'v1=zz', 'x-realign-timestamp': 'soon' };
    case 'none':
      return {};
  }
}

const requestIdCheck = (res: Response) => (res.headers.get('x-request-id') ? [] : ['no x-request-id header']);

async function engineIdle(): Promise<Record<string, unknown>[]> {
  return Promise.all(
    backend.registry.models().map(async (m) => {
      const s = await m.engine.refreshStats();
      return {
        model: m.config.id,
        running: s.running,
        queued: s.queued,
        rows: s.rows,
        reserved: s.kvTokensReserved,
        kvUsed: s.kvTokensUsed,
      };
    }),
  );
}

/** No generation left behind (within 5 s): every row, queue place and KV reservation was given back. */
async function expectEnginesIdle(): Promise<void> {
  await expect
    .poll(engineIdle, { timeout: 5_000 })
    .toEqual(
      backend.registry.models().map((m) => ({ model: m.config.id, running: 0, queued: 0, rows: 0, reserved: 0, kvUsed: 0 })),
    );
}

describe(`fuzzing the backend (seed ${SEED})`, () => {
  it(
    'HTTP API: random and mutated requests never get a 5xx, always get the error JSON, none is lost, the engines end empty',
    { timeout: 600_000 },
    async () => {
      const valid = {
        models: ['inra', 'inra', 'plain', 'nope'],
        maxTokens: 8,
        lambda: fc.double({ min: -1, max: 2, noNaN: true }),
      };
      const routes: Route[] = [
        { method: 'POST', path: '/v1/chat/completions', body: validBody('chat', valid) },
        { method: 'POST', path: '/v1/completions', body: validBody('completions', valid) },
        { method: 'POST', path: '/v1/logits', body: validBody('logits', valid) },
        { method: 'GET', path: '/v1/models', body: null },
        { method: 'GET', path: '/metrics', body: null },
        { method: 'GET', path: '/healthz', body: null },
        { method: 'GET', path: '/readyz', body: null },
      ];
      const auth = fc.constantFrom<AuthMode>('valid', 'valid', 'valid', 'valid', 'valid', 'none', 'wrong', 'malformed', 'alt');
      const cases = fc.sample(fuzzCase({ routes, auth }), { numRuns: Math.round(2000 * SCALE), seed: SEED });
      const tally = newTally();
      await runPool(cases, 4, async (c, i) => {
        const url = new URL(backend.url + c.path);
        const headers = { ...c.headers, ...(await credentials(c, url, i)) };
        await judge(
          tally,
          i,
          c,
          () => fetch(url, { method: c.method, headers, body: c.body, signal: AbortSignal.timeout(DEADLINE_MS) }),
          DEADLINE_MS,
          requestIdCheck,
        );
      });
      console.log(summary('backend HTTP', SEED, tally));
      expect(tally.lost, describeViolations(tally)).toBe(0);
      expect(tally.violations.length, describeViolations(tally)).toBe(0);
      for (const status of ['200', '400', '401', '404'])
        expect(tally.byStatus[status] ?? 0, `no ${status} among ${JSON.stringify(tally.byStatus)}`).toBeGreaterThan(0);

      const ok = await fetch(`${backend.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'inra', prompt: 'after the storm', max_tokens: 3 }),
      });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(3);
      await expectEnginesIdle();
    },
  );

  it(
    'raw HTTP: broken framing gets a 4xx with the error JSON (or a closed connection), never a 5xx or a hang, and the server keeps serving',
    { timeout: 300_000 },
    async () => {
      const body = JSON.stringify({ model: 'inra', prompt: 'raw', max_tokens: 2 });
      const headers = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' };
      const mutations = fc.sample(rawMutation(), { numRuns: Math.round(400 * SCALE), seed: SEED + 2 });
      const counts: Record<string, number> = {};
      const problems: string[] = [];
      let hung = 0;
      await runPool(mutations, 8, async (m) => {
        const outcome = await sendRaw(backend.port, rawRequest('POST', '/v1/completions', headers, body, m), 1_000, DEADLINE_MS);
        const key = outcome.responses.length === 0 ? 'closed without answer' : outcome.responses.map((r) => r.status).join('+');
        counts[key] = (counts[key] ?? 0) + 1;
        const what = JSON.stringify(m).slice(0, 200);
        if (!outcome.closed) {
          hung++;
          problems.push(`${what} → connection still open after ${DEADLINE_MS} ms`);
        }
        for (const r of outcome.responses) {
          if (r.status >= 500) problems.push(`${what} → ${r.status}`);
          else if (r.status >= 400)
            problems.push(...errorBodyProblems(r.status, r.contentType, r.body).map((p) => `${what} → ${p}`));
        }
      });
      console.log(
        `[fuzz backend raw HTTP] seed=${SEED + 2} tried=${mutations.length} outcomes ${JSON.stringify(counts)} hung=${hung}`,
      );
      expect(problems.slice(0, 5), `${problems.length} problems`).toEqual([]);
      const ok = await fetch(`${backend.url}/v1/completions`, { method: 'POST', headers, body });
      expect(ok.status).toBe(200);
      await expectEnginesIdle();
    },
  );

  it(
    'malformed HTTP on an open connection: every case answered with the error JSON and closed, promptly',
    { timeout: 120_000 },
    async () => {
      const cases = stalledRequests(`Authorization: Bearer ${TEST_TOKEN}`);
      const counts: Record<string, number> = {};
      const problems: string[] = [];
      // the client never half-closes: a server that waits for more would hold the connection to the deadline
      const limitMs = LIMITS.body_timeout_ms + 2_000;
      await runPool([...cases, ...cases, ...cases], 6, async (c) => {
        const started = performance.now();
        const outcome = await sendRaw(backend.port, c.bytes, 60_000, limitMs);
        const ms = performance.now() - started;
        const r = outcome.responses[0];
        const key = `${c.name} → ${r ? r.status : 'no answer'}`;
        counts[key] = (counts[key] ?? 0) + 1;
        if (!r) problems.push(`${c.name}: no answer in ${Math.round(ms)} ms`);
        else if (r.status >= 500) problems.push(`${c.name}: ${r.status}`);
        else problems.push(...errorBodyProblems(r.status, r.contentType, r.body).map((p) => `${c.name}: ${p}`));
        if (!outcome.closed) problems.push(`${c.name}: connection still open after ${limitMs} ms`);
      });
      console.log(`[fuzz backend malformed HTTP] tried=${cases.length * 3} outcomes ${JSON.stringify(counts)}`);
      expect(problems.slice(0, 5), `${problems.length} problems`).toEqual([]);
      expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
    },
  );

  it(
    'size amplification: requests whose answer or work could blow up get a bounded answer in bounded time, and the server keeps answering',
    { timeout: 300_000 },
    async () => {
      // size: 'max' — fast-check's bias towards small arrays would rarely reach the sizes this class is about
      const lambdas = fc.array(fc.double({ min: -1, max: 2, noNaN: true }), { minLength: 1, maxLength: 32, size: 'max' });
      const ids = fc.array(fc.integer({ min: 3, max: 200 }), { minLength: 1, maxLength: 66, size: 'max' });
      const top = fc.oneof(fc.integer({ min: 1, max: 100 }), fc.constant(100));
      const longText = fc.integer({ min: 1, max: 20_000 }).map((n) => 'amplify '.repeat(Math.ceil(n / 8)).slice(0, n));
      const model = fc.constantFrom('inra', 'plain');
      const cases = fc.sample(
        fc.oneof(
          fc.record({
            kind: fc.constant('logits'),
            body: fc.record({
              model: fc.constant('inra'),
              input_ids: ids,
              positions: fc.constantFrom('all', 'last'),
              lambdas,
              top_logprobs: top,
              include_branches: fc.boolean(),
            }),
          }),
          fc.record({
            kind: fc.constant('logits'),
            body: fc.record({
              model,
              prompt: longText,
              positions: fc.constantFrom('all', 'last'),
              top_logprobs: fc.integer({ min: 1, max: 100 }),
            }),
          }),
          fc.record({
            kind: fc.constant('completions'),
            body: fc.record({
              model,
              prompt: fc.oneof(fc.constant('go'), longText, fc.array(fc.constant('go'), { maxLength: 40 })),
              n: fc.integer({ min: 1, max: 64 }),
              max_tokens: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 9, max: 2 ** 31 })),
              logprobs: fc.integer({ min: 0, max: 20 }),
            }),
          }),
          fc.record({
            kind: fc.constant('chat'),
            body: fc.record({
              model,
              messages: fc.array(fc.record({ role: fc.constant('user'), content: longText }), { minLength: 1, maxLength: 3 }),
              n: fc.integer({ min: 1, max: 4 }),
              max_tokens: fc.integer({ min: 1, max: 16 }),
              logprobs: fc.constant(true),
              top_logprobs: fc.integer({ min: 0, max: 20 }),
            }),
          }),
          fc.record({
            kind: fc.constant('completions'),
            body: fc.record({
              model,
              prompt: fc.constant('go'),
              max_tokens: fc.constant(4),
              stop: fc.array(fc.string({ minLength: 1, maxLength: 400 }), { minLength: 1, maxLength: 200 }),
            }),
          }),
          fc.record({
            kind: fc.constant('completions'),
            body: fc.record({
              model,
              prompt: fc.constant('go'),
              max_tokens: fc.constant(4),
              logit_bias: fc.dictionary(fc.integer({ min: 0, max: 5000 }).map(String), fc.integer({ min: -100, max: 100 }), {
                maxKeys: 2000,
              }),
            }),
          }),
        ),
        { numRuns: Math.round(300 * SCALE), seed: SEED + 3 },
      );
      const path = { logits: '/v1/logits', completions: '/v1/completions', chat: '/v1/chat/completions' } as const;
      /** The largest answer a request may get under LIMITS (a generous envelope around the bounded parts). */
      const envelope = (kind: keyof typeof path) =>
        kind === 'logits'
          ? 8_192 + LIMITS.max_prompt_tokens * 8 + LIMITS.max_logits_entries * LOGITS_ENTRY_WIRE_BYTES
          : 8_192 + LIMITS.max_n * 4 * LIMITS.max_tokens * 21 * 200;
      const byOutcome: Record<string, number> = {};
      const problems: string[] = [];
      let largest = 0;
      let slowest = 0;
      const limitMs = 10_000;
      await runPool(cases, 4, async (c) => {
        const started = performance.now();
        const text = JSON.stringify(c.body);
        let res: Response;
        try {
          res = await fetch(backend.url + path[c.kind as keyof typeof path], {
            method: 'POST',
            headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
            body: text,
            signal: AbortSignal.timeout(limitMs),
          });
        } catch (err) {
          problems.push(`${c.kind} ${text.slice(0, 120)}: ${(err as Error).message}`);
          return;
        }
        const answer = await res.text();
        const ms = performance.now() - started;
        slowest = Math.max(slowest, ms);
        largest = Math.max(largest, answer.length);
        const code = res.status >= 400 ? ((JSON.parse(answer) as { error?: { code?: string } }).error?.code ?? 'null') : '';
        const key = `${c.kind} ${res.status}${code ? ` ${code}` : ''}`;
        byOutcome[key] = (byOutcome[key] ?? 0) + 1;
        if (res.status >= 500) problems.push(`${key}: ${text.slice(0, 120)}`);
        if (res.status >= 400)
          problems.push(
            ...errorBodyProblems(res.status, res.headers.get('content-type') ?? '', answer).map((p) => `${key}: ${p}`),
          );
        if (answer.length > envelope(c.kind as keyof typeof path))
          problems.push(
            `${key}: ${answer.length} bytes of answer (envelope ${envelope(c.kind as keyof typeof path)}) for ${text.slice(0, 120)}`,
          );
        if (ms > limitMs) problems.push(`${key}: ${Math.round(ms)} ms`);
      });
      const health = performance.now();
      expect((await fetch(`${backend.url}/healthz`)).status).toBe(200);
      const healthMs = performance.now() - health;
      console.log(
        `[fuzz backend size amplification] seed=${SEED + 3} tried=${cases.length} outcomes ${JSON.stringify(byOutcome)} largest answer ${largest} B, slowest ${Math.round(slowest)} ms, /healthz after ${Math.round(healthMs)} ms`,
      );
      expect(problems.slice(0, 5), `${problems.length} problems`).toEqual([]);
      expect(healthMs).toBeLessThan(2_000);
      await expectEnginesIdle();
    },
  );
});
