/**
 * Usage through the queue (src/usage/usage-queue.ts), end to end in workerd with the local queue: 1,000 requests
 * with random endings (complete, streamed or not; client hang-up mid-stream; backend 500; backend killed mid-stream),
 * while the consumer is made to give up after its write committed (so batches are delivered again) and messages are
 * delivered twice. Every request must have exactly one row, with the counts the stub backend's ledger holds for it.
 * Also: the one-statement write itself is idempotent and order-free.
 */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it } from 'vitest';
import worker from '../src/index.ts';
import { eventRow, usageConsumerHooks, writeUsageEvents, type UsageEvent } from '../src/usage/usage-queue.ts';
import { eventually } from './helpers/eventually.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { ORIGIN } from './helpers/http.ts';
import { stubBackend, stubUrl, uniqueTag } from './helpers/stub.ts';

/** A small seeded PRNG (mulberry32): a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Ending = 'complete' | 'complete-stream' | 'hang-up' | 'backend-500' | 'backend-killed';
const ENDINGS: Ending[] = ['complete', 'complete-stream', 'hang-up', 'backend-500', 'backend-killed'];
const BEHAVIOUR: Record<Ending, string> = {
  complete: 'ok',
  'complete-stream': 'ok',
  'hang-up': 'gated',
  'backend-500': 'fail500',
  'backend-killed': 'die',
};

interface LedgerEntry {
  state: string;
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    realign: { branches: Record<'aligned' | 'reference', { prompt_tokens: number; completion_tokens: number }> };
  };
}

afterEach(() => {
  usageConsumerHooks.afterWrite = null;
});

describe('usage through the queue', () => {
  it(
    '1,000 requests with random endings, forced consumer retries and duplicate deliveries: one exact row each',
    { timeout: 180_000 },
    async () => {
      const seed =
        Number((env as unknown as { REALIGN_FUZZ_SEED?: string }).REALIGN_FUZZ_SEED) || Math.floor(Math.random() * 2 ** 31);
      const random = prng(seed);
      const t = await makeTenant({ requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000 });
      const tag = uniqueTag('usage-queue');

      // the consumer fails after its write committed on half of the first deliveries, and re-sends a fifth of the
      // messages it sees once (duplicate deliveries)
      let forcedRetries = 0;
      let duplicated = 0;
      const resent = new Set<string>();
      usageConsumerHooks.afterWrite = (batch) => {
        const twice = batch.messages.filter((m) => {
          const id = (m.body as UsageEvent).row.dispatch_id + ':' + (m.body as UsageEvent).row.status;
          if (resent.has(id) || random() >= 0.2) return false;
          resent.add(id);
          return true;
        });
        if (twice.length > 0) {
          duplicated += twice.length;
          void env.USAGE_QUEUE.sendBatch(twice.map((m) => ({ body: m.body, contentType: 'json' as const })));
        }
        if (batch.messages[0]!.attempts === 1 && random() < 0.5) {
          forcedRetries++;
          return 'retry';
        }
      };

      const endings = Array.from({ length: 1000 }, () => ENDINGS[Math.floor(random() * ENDINGS.length)]!);
      const requestIds: string[] = [];
      const one = async (ending: Ending): Promise<string> => {
        const ctx = createExecutionContext();
        const stream = ending !== 'complete';
        const body = { model: t.model, messages: [{ role: 'user', content: 'hi' }], temperature: 1, stream };
        const res = await worker.fetch(
          new Request(`${ORIGIN}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
          { ...env, BACKENDS: JSON.stringify([{ url: stubBackend(BEHAVIOUR[ending], tag), weight: 1 }]), MAX_ATTEMPTS: '1' },
          ctx,
        );
        const requestId = res.headers.get('x-request-id')!;
        if (ending === 'hang-up') {
          const reader = res.body!.getReader();
          await reader.read(); // the first event, then the client leaves
          await reader.cancel();
        } else await res.text();
        pending.push(waitOnExecutionContext(ctx));
        return requestId;
      };
      const pending: Promise<unknown>[] = [];
      const started = Date.now();
      // 100 clients at a time (more overloads a 2-core machine: backends time out); each request's waitUntil work (ledger look-ups, queue sends) is awaited at the end
      for (let i = 0; i < endings.length; i += 100) requestIds.push(...(await Promise.all(endings.slice(i, i + 100).map(one))));
      await Promise.all(pending);
      const sent = Date.now() - started;

      // every request's row is final (the consumer has caught up with retries and duplicates)
      const rows = await eventually(
        'all 1,000 usage rows final',
        async () => {
          const r = await env.DB.prepare('SELECT * FROM usage WHERE tenant_generation = ?').bind(t.generation).all();
          const final = r.results.filter((x) => x.status !== 0);
          return final.length === 1000 && r.results.length === 1000 ? r.results : null;
        },
        60_000,
      );
      // let any straggling duplicate deliveries land, then read again: still the same rows
      await new Promise((r) => setTimeout(r, 1500));
      const again = (await env.DB.prepare('SELECT * FROM usage WHERE tenant_generation = ?').bind(t.generation).all()).results;
      expect(again).toEqual(rows);

      const ledger = ((await (await fetch(`${stubUrl()}/__stats/${tag}`)).json()) as { ledger: Record<string, LedgerEntry> })
        .ledger;
      const byRequest = new Map(rows.map((r) => [r.request_id as string, r]));
      expect(byRequest.size, 'one row per request id').toBe(1000);
      expect(new Set(requestIds)).toEqual(new Set(byRequest.keys()));
      const statusOf: Record<Ending, number> = {
        complete: 200,
        'complete-stream': 200,
        'hang-up': 499,
        'backend-500': 500, // a backend's 500 (this request failed there) is passed on as it came (and recorded)
        'backend-killed': 502,
      };
      const mismatches: string[] = [];
      let backendTokens = 0;
      let rowTokens = 0;
      endings.forEach((ending, i) => {
        const row = byRequest.get(requestIds[i]!)!;
        const entry = ledger[row.dispatch_id as string];
        const u = entry?.usage;
        const expected = {
          status: statusOf[ending],
          prompt_tokens: u?.prompt_tokens ?? 0,
          completion_tokens: u?.completion_tokens ?? 0,
          aligned_prompt_tokens: u?.realign.branches.aligned.prompt_tokens ?? 0,
          aligned_completion_tokens: u?.realign.branches.aligned.completion_tokens ?? 0,
          reference_prompt_tokens: u?.realign.branches.reference.prompt_tokens ?? 0,
          reference_completion_tokens: u?.realign.branches.reference.completion_tokens ?? 0,
        };
        const got = Object.fromEntries(Object.keys(expected).map((k) => [k, row[k]]));
        if (entry === undefined || JSON.stringify(got) !== JSON.stringify(expected))
          mismatches.push(`${ending}: row ${JSON.stringify(got)} ledger ${JSON.stringify(entry)}`);
        backendTokens += expected.prompt_tokens + expected.completion_tokens;
        rowTokens += (row.prompt_tokens as number) + (row.completion_tokens as number);
      });
      const counts = Object.fromEntries(ENDINGS.map((e) => [e, endings.filter((x) => x === e).length]));
      console.log(
        `usage queue: seed ${seed}, ${JSON.stringify(counts)}, sent in ${sent} ms, ${forcedRetries} forced retries, ${duplicated} duplicate deliveries, ${backendTokens} backend tokens`,
      );
      expect(mismatches.slice(0, 5), `seed ${seed}: ${mismatches.length} rows differ from the backend's ledger`).toEqual([]);
      expect(rowTokens).toBe(backendTokens);
      expect(forcedRetries, 'the consumer was made to retry').toBeGreaterThan(0);
      expect(duplicated, 'messages were delivered twice').toBeGreaterThan(0);
      for (const e of ENDINGS) expect(counts[e], `ending ${e} drawn`).toBeGreaterThan(100);
    },
  );

  it('the batch statement: in-flight and final in any order, duplicates, and a final row never overwritten', async () => {
    const base = {
      request_id: 'req_x',
      tenant_id: 'usage-queue-test',
      tenant_generation: 'g',
      key_id: 'key_x',
      model_id: 'm',
      endpoint: '/v1/chat/completions',
      stream: true,
      cached: false,
      prompt_tokens: 3,
      aligned_prompt_tokens: 0,
      aligned_completion_tokens: 0,
      reference_prompt_tokens: 0,
      reference_completion_tokens: 0,
      created_at: Date.now(),
      updated_at: Date.now(),
    };
    const ev = (dispatchId: string, status: number, completion: number): UsageEvent => ({
      v: 1,
      row: eventRow({ ...base, request_id: `req_${dispatchId}`, dispatch_id: dispatchId, status, completion_tokens: completion }),
      settle: null,
    });
    const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    // one batch: a in flight then final, b final then in flight, c final twice
    const made = await writeUsageEvents(env.DB, [
      ev(a, 0, 0),
      ev(a, 200, 7),
      ev(b, 499, 2),
      ev(b, 0, 0),
      ev(c, 200, 4),
      ev(c, 200, 4),
    ]);
    expect([...made].sort()).toEqual([a, b, c].sort());
    // a redelivery of the whole batch, and a different final for c: nothing changes, nothing is reported completed
    expect((await writeUsageEvents(env.DB, [ev(a, 0, 0), ev(a, 200, 7), ev(b, 499, 2), ev(c, 502, 9)])).size).toBe(0);
    const rows = (
      await env.DB.prepare(`SELECT dispatch_id, status, completion_tokens FROM usage WHERE dispatch_id IN (?, ?, ?)`)
        .bind(a, b, c)
        .all()
    ).results;
    expect(new Map(rows.map((r) => [r.dispatch_id, [r.status, r.completion_tokens]]))).toEqual(
      new Map([
        [a, [200, 7]],
        [b, [499, 2]],
        [c, [200, 4]],
      ]),
    );
  });

  it('the consumer drops a malformed message and writes the rest; a write that fails throws, so the batch comes again', async () => {
    const dispatchId = crypto.randomUUID();
    const good: UsageEvent = {
      v: 1,
      row: eventRow({
        request_id: `req_${dispatchId}`,
        dispatch_id: dispatchId,
        tenant_id: 'usage-queue-test',
        key_id: 'key_x',
        model_id: 'm',
        endpoint: '/v1/completions',
        status: 200,
        completion_tokens: 6,
        created_at: Date.now(),
      }),
      settle: null,
    };
    const message = (id: string, body: unknown) => ({ id, timestamp: new Date(), attempts: 1, body });
    const batch = createMessageBatch('realign-usage', [
      message('m1', good),
      message('m2', { v: 1, row: { dispatch_id: 'no-other-column' } }),
      message('m3', 'not an event'),
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.outcome).toBe('ok');
    expect(result.retryBatch.retry).toBe(false);
    const row = await env.DB.prepare('SELECT status, completion_tokens, prompt_tokens, stream FROM usage WHERE dispatch_id = ?')
      .bind(dispatchId)
      .first();
    // columns the event left out take the table's defaults
    expect(row).toEqual({ status: 200, completion_tokens: 6, prompt_tokens: 0, stream: 0 });

    const broken = {
      ...env,
      DB: {
        prepare() {
          throw new Error('D1 unavailable (test)');
        },
      },
    } as unknown as Env;
    const again = createMessageBatch('realign-usage', [message('m4', good)]);
    await expect(worker.queue(again, broken)).rejects.toThrow('D1 unavailable (test)');
  });
});
