/** Calling the worker in tests: through SELF (the configured worker) or directly with overridden vars. */
import { createExecutionContext, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import worker from '../../src/index.ts';

/** Origin used for requests to the worker. */
export const ORIGIN = 'http://edge.test';

/** The admin token bound in vitest.config.mts. */
export const ADMIN_TOKEN = 'test-admin-token';

/** Calls the worker as deployed in the test config. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`${ORIGIN}${path}`, init);
}

/** POSTs JSON with an API key. */
export function postJson(
  path: string,
  key: string | null,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return call(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...headers },
    body: JSON.stringify(body),
  });
}

/** An admin API call with the admin token; throws with the body when the status is not 2xx, unless `expectError`. */
export async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await call(`/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`admin ${method} ${path} → ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/**
 * Calls the worker's fetch handler directly with some vars replaced (e.g. BACKENDS for a routing test), and
 * waits for its waitUntil work. Same code path as SELF, only the bindings differ.
 */
export async function callWith(
  vars: Partial<Record<keyof Env, string>>,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, init), { ...env, ...vars }, ctx);
  void waitOnExecutionContext(ctx);
  return res;
}
