/**
 * The worker's bindings wrapped in counting proxies (D1 statements as reads and writes, KV operations, Durable Object
 * calls, queue messages), and one request straight through the worker's fetch handler with such an env: what the
 * request-path tests (edge-hot-path, edge-rate-limiter) count.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import worker from '../../src/index.ts';
import { ORIGIN } from './http.ts';

export interface Counts {
  d1Reads: number;
  d1Writes: number;
  kvReads: number;
  kvWrites: number;
  doCalls: number;
  queueMessages: number;
}

export const zero = (): Counts => ({ d1Reads: 0, d1Writes: 0, kvReads: 0, kvWrites: 0, doCalls: 0, queueMessages: 0 });

/** A D1 binding that counts every statement it runs: SELECTs as reads, anything else as writes. */
export function countingD1(db: D1Database, counts: Counts): D1Database {
  const count = (sql: string) => {
    if (/^\s*(SELECT|WITH)\b/i.test(sql)) counts.d1Reads++;
    else counts.d1Writes++;
  };
  const sqlOf = new WeakMap<object, string>();
  const wrapStatement = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy: D1PreparedStatement = new Proxy(stmt, {
      get(target, prop) {
        if (prop === 'bind') return (...args: unknown[]) => wrapStatement(target.bind(...args), sql);
        if (prop === 'first' || prop === 'all' || prop === 'run' || prop === 'raw')
          return (...args: unknown[]) => {
            count(sql);
            return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    sqlOf.set(proxy, sql);
    return proxy;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'prepare') return (sql: string) => wrapStatement(target.prepare(sql), sql);
      if (prop === 'batch')
        return (stmts: D1PreparedStatement[]) => {
          for (const s of stmts) count(sqlOf.get(s) ?? 'WRITE');
          // the real statements behind the proxies
          return target.batch(stmts.map((s) => (s as unknown as { valueOf(): D1PreparedStatement }).valueOf()));
        };
      if (prop === 'exec')
        return (sql: string) => {
          count(sql);
          return target.exec(sql);
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** `target` whose method calls first go through `onCall(method, args)`; everything else as it is. */
function countingProxy<T extends object>(target: T, onCall: (method: string | symbol, args: unknown[]) => void): T {
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        onCall(prop, args);
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

export function countingKv(kv: KVNamespace, counts: Counts): KVNamespace {
  return countingProxy(kv, (prop) => {
    if (prop === 'get' || prop === 'getWithMetadata' || prop === 'list') counts.kvReads++;
    else if (prop === 'put' || prop === 'delete') counts.kvWrites++;
  });
}

export function countingQueue(queue: Queue, counts: Counts): Queue {
  return countingProxy(queue, (prop, args) => {
    if (prop === 'send') counts.queueMessages++;
    if (prop === 'sendBatch') counts.queueMessages += (args[0] as unknown[]).length;
  });
}

/** A Durable Object namespace whose stubs count every RPC call (`broken`: every call throws, as if unreachable). */
export function countingLimiter(ns: Env['RATE_LIMITER'], counts: Counts, broken = false): Env['RATE_LIMITER'] {
  return new Proxy(ns, {
    get(target, prop) {
      if (prop === 'get')
        return (id: DurableObjectId) => {
          const stub = target.get(id);
          return new Proxy(stub, {
            get(s, method) {
              const fn = Reflect.get(s, method) as unknown;
              if (typeof fn !== 'function' || method === 'then') return fn;
              return (...args: unknown[]) => {
                counts.doCalls++;
                if (broken) return Promise.reject(new Error('Durable Object unreachable (test)'));
                // an RPC method is called as it is (its `apply` would be an RPC call of a method named "apply")
                return (fn as (...a: unknown[]) => unknown)(...args);
              };
            },
          });
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The test env with every storage binding counted (and `vars` replaced). */
export function countedEnv(counts: Counts, vars: Partial<Record<keyof Env, string>> = {}, brokenLimiter = false): Env {
  return {
    ...env,
    ...vars,
    DB: countingD1(env.DB, counts),
    CACHE: countingKv(env.CACHE, counts),
    USAGE_QUEUE: countingQueue(env.USAGE_QUEUE, counts),
    RATE_LIMITER: countingLimiter(env.RATE_LIMITER, counts, brokenLimiter),
  };
}

/** One request through the worker's fetch handler with `e`, its body read whole and its waitUntil work awaited. */
export async function direct(e: Env, path: string, init: RequestInit = {}): Promise<{ res: Response; text: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`${ORIGIN}${path}`, init), e, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, text };
}

export const post = (key: string, body: unknown) => ({
  method: 'POST',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
