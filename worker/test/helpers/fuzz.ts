/**
 * Shared by the worker fuzz tests (fuzz-api, fuzz-tenant-lifecycle, fuzz-limits): the REALIGN_FUZZ_SCALE and
 * REALIGN_FUZZ_SEED knobs (bindings set from the environment in vitest.config.mts; `npm run soak` raises the scale),
 * the request senders and the count formatting.
 */
import fc from 'fast-check';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { type AuthMode, type FuzzCase } from '../../../test/fuzz/requests.ts';
import worker from '../../src/index.ts';
import { ADMIN_TOKEN, ORIGIN, call } from './http.ts';

export const knobs = env as unknown as { REALIGN_FUZZ_SCALE?: string; REALIGN_FUZZ_SEED?: string };
export const SCALE = Math.max(0.1, Number(knobs.REALIGN_FUZZ_SCALE ?? '1') || 1);
export const SEED = knobs.REALIGN_FUZZ_SEED ? Number(knobs.REALIGN_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Longest a single request may take before it counts as hung (the stub answers in milliseconds). */
export const DEADLINE_MS = 10_000;
/** Requests in flight at once (workerd serves these tests on one thread; more only adds contention). */
export const CONCURRENCY = 4;
/** Cases among which one in ten goes through SELF (see `sender`). */
export const SELF_CASES = 2000;

export const lambda = fc.double({ min: 0, max: 1, noNaN: true });

export function authHeader(mode: AuthMode, good: string, other: string): Record<string, string> {
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
export async function direct(path: string, init: RequestInit): Promise<Response> {
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
export function sender(c: FuzzCase, index: number, key: string): () => Promise<Response> {
  const isAdmin = c.path.startsWith('/admin');
  const auth = isAdmin ? authHeader(c.auth, ADMIN_TOKEN, key) : authHeader(c.auth, key, ADMIN_TOKEN);
  const init = { method: c.method, headers: { ...c.headers, ...auth }, body: c.body };
  return index % 10 === 0 && index < SELF_CASES
    ? () => call(c.path, { ...init, signal: AbortSignal.timeout(DEADLINE_MS) })
    : () => direct(c.path, init);
}

export const requestIdCheck = (res: Response) => (res.headers.get('x-request-id') ? [] : ['no x-request-id header']);

export const statusText = (byStatus: Record<string, number>) =>
  Object.entries(byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([k, n]) => `${k}: ${n}`)
    .join(', ');
