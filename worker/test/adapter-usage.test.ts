/**
 * Usage per named adapter at the edge (issue 18): the usage row keeps the mix a request ran and each adapter
 * branch's tokens as the backend reported them (usage.realign.mix / .adapters), written idempotently by dispatch id
 * like the other counts, and the admin usage report sums them per adapter.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, callWith } from './helpers/http.ts';
import { stubBackend, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';
import { readConfig } from '../src/config.ts';
import { reconcileInFlight } from '../src/usage/in-flight.ts';
import { eventRow, writeUsageEvents, type UsageEvent } from '../src/usage/usage-queue.ts';

const sender = (backends: { url: string; weight?: number }[]) => (key: string, body: Record<string, unknown>) =>
  callWith({ BACKENDS: JSON.stringify(backends) }, '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const tokens = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion });

describe('usage per adapter', () => {
  it('rows keep the mix and per-adapter branch tokens; the report sums them per adapter', async () => {
    const send = sender([{ url: stubBackend('ok', uniqueTag('adapter-usage')) }]);
    const t = await makeTenant();
    const chat = (extra: Record<string, unknown>) => ({ model: t.model, messages: [{ role: 'user', content: 'hi' }], ...extra });
    const ids: string[] = [];
    for (const extra of [{ mix: { safe: 0.2, concise: 0.5 } }, { adapter: 'concise', lambda: 1 }, { lambda: 0.5 }]) {
      const res = await send(t.key, chat(extra));
      expect(res.status).toBe(200);
      await res.body?.cancel();
      ids.push(res.headers.get('x-request-id')!);
    }
    const [mixed, one, plain] = await Promise.all(ids.map((id) => usageRowOf(id)));
    // the stub reports 5 prompt and 3 completion tokens per branch
    expect(mixed).toMatchObject({ mix: 'concise=0.5,safe=0.2', usage_source: 'backend' });
    expect(JSON.parse(mixed!.adapter_tokens!)).toEqual({ concise: tokens(5, 3), safe: tokens(5, 3) });
    // one adapter at λ = 1 runs no reference branch
    expect(one).toMatchObject({ mix: 'concise=1', reference_prompt_tokens: 0, aligned_completion_tokens: 3 });
    expect(JSON.parse(one!.adapter_tokens!)).toEqual({ concise: tokens(5, 3) });
    expect(plain).toMatchObject({ mix: null, adapter_tokens: null });

    const report = await admin<{ data: Record<string, unknown>[] }>('GET', `/usage?tenant=${t.tenantId}&group_by=model`);
    expect(report.data).toEqual([
      expect.objectContaining({ group: t.model, requests: 3, adapters: { concise: tokens(10, 6), safe: tokens(5, 3) } }),
    ]);
    const none = await admin<{ data: Record<string, unknown>[] }>('GET', `/usage?tenant=${(await makeTenant()).tenantId}`);
    expect(none.data).toEqual([]);
  });

  it("sums the adapters of every backend a request reached (a failed backend's ledger and the answer)", async () => {
    // two tags (the stub keeps one ledger per tag); the failing backend tried first (weighted order)
    const send = sender([
      { url: stubBackend('fail503', uniqueTag('adapter-fail')), weight: 1e9 },
      { url: stubBackend('ok', uniqueTag('adapter-ok')), weight: 1 },
    ]);
    const t = await makeTenant();
    const res = await send(t.key, { model: t.model, messages: [{ role: 'user', content: 'x' }], adapter: 'safe', lambda: 0.5 });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-attempts')).toBe('2');
    await res.body?.cancel();
    const row = await usageRowOf(res.headers.get('x-request-id')!);
    // the failed backend read the prompt (5) and generated nothing; the answering one 5 + 3
    expect(JSON.parse(row.adapter_tokens!)).toEqual({ safe: tokens(10, 3) });
    expect(row).toMatchObject({ mix: 'safe=0.5', aligned_prompt_tokens: 10, aligned_completion_tokens: 3 });
  });

  it("a row an edge left in flight gets its adapters from the backend's ledger when reconciled", async () => {
    const backend = stubBackend('ok', uniqueTag('adapter-reconcile'));
    const t = await makeTenant();
    const res = await sender([{ url: backend }])(t.key, {
      model: t.model,
      messages: [{ role: 'user', content: 'x' }],
      mix: { concise: 0.5, safe: 1 },
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const done = await usageRowOf(res.headers.get('x-request-id')!);
    // the row's dispatch id: the id the backend's ledger keeps the request under (migration 0003)
    const dispatchId = (done as typeof done & { dispatch_id: string }).dispatch_id;
    // as if the edge had died after dispatching: the row in flight, without counts, from a while ago
    await env.DB.prepare(
      `UPDATE usage SET status = 0, mix = NULL, adapter_tokens = NULL, completion_tokens = 0, created_at = ? WHERE dispatch_id = ?`,
    )
      .bind(Date.now() - 60_000, dispatchId)
      .run();
    const config = { ...readConfig(env), backends: [{ url: backend, weight: 1 }] };
    await reconcileInFlight(env.DB, config, Date.now(), true);
    const row = await env.DB.prepare('SELECT status, usage_source, mix, adapter_tokens FROM usage WHERE dispatch_id = ?')
      .bind(dispatchId)
      .first<{ status: number; usage_source: string; mix: string; adapter_tokens: string }>();
    expect(row).toMatchObject({ status: 200, usage_source: 'reconciled', mix: 'concise=0.5,safe=1' });
    expect(JSON.parse(row!.adapter_tokens)).toEqual({ concise: tokens(5, 3), safe: tokens(5, 3) });
  });

  it('the batch statement writes the adapter columns once: in-flight then final, redelivered, or a later final', async () => {
    const base = {
      tenant_id: 'adapter-usage-test',
      tenant_generation: 'g',
      key_id: 'key_x',
      model_id: 'm',
      endpoint: '/v1/chat/completions',
      created_at: Date.now(),
      updated_at: Date.now(),
    };
    const ev = (id: string, status: number, adapters: Record<string, unknown> | null): UsageEvent => ({
      v: 1,
      row: eventRow({
        ...base,
        request_id: `req_${id}`,
        dispatch_id: id,
        status,
        mix: adapters === null ? null : 'concise=0.5',
        adapter_tokens: adapters === null ? null : JSON.stringify(adapters),
      }),
      settle: null,
    });
    const id = crypto.randomUUID();
    await writeUsageEvents(env.DB, [ev(id, 0, null), ev(id, 200, { concise: tokens(4, 2) })]);
    await writeUsageEvents(env.DB, [
      ev(id, 200, { concise: tokens(4, 2) }),
      ev(id, 200, { concise: tokens(9, 9) }),
      ev(id, 0, null),
    ]);
    const rows = (await env.DB.prepare('SELECT mix, adapter_tokens FROM usage WHERE dispatch_id = ?').bind(id).all()).results;
    expect(rows).toEqual([{ mix: 'concise=0.5', adapter_tokens: JSON.stringify({ concise: tokens(4, 2) }) }]);
  });
});
