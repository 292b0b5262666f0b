/**
 * Which backends to try, in which order: a weighted random order of the healthy ones (backends on probation
 * join after passing a `/readyz` probe). When none is healthy, all are tried anyway — a stale health record must
 * not turn into an outage.
 */
import type { BackendConfig } from '../config.ts';
import type { HealthBook } from './health-book.ts';
import { probeReady } from './probe.ts';

/** A weighted random permutation: each next backend is drawn with probability proportional to its weight. */
export function weightedOrder(backends: BackendConfig[], random: () => number = Math.random): BackendConfig[] {
  const pool = [...backends];
  const out: BackendConfig[] = [];
  while (pool.length > 0) {
    const total = pool.reduce((s, b) => s + b.weight, 0);
    let r = random() * total;
    let i = 0;
    while (i < pool.length - 1 && r >= pool[i]!.weight) r -= pool[i++]!.weight;
    out.push(pool.splice(i, 1)[0]!);
  }
  return out;
}

/** Options of {@link planAttempts}. */
export interface PlanOptions {
  book: HealthBook;
  now: number;
  cooldownMs: number;
  probeTimeoutMs: number;
  hmacSecret: string;
}

/** The order in which to try backends for one request. */
export async function planAttempts(backends: BackendConfig[], o: PlanOptions): Promise<BackendConfig[]> {
  const up = backends.filter((b) => o.book.state(b.url, o.now) === 'up');
  const probation = backends.filter((b) => o.book.state(b.url, o.now) === 'probation');
  const recovered = await Promise.all(
    probation.map(async (b) => {
      const ready = await probeReady(b.url, o.probeTimeoutMs, o.hmacSecret);
      if (ready.ok) o.book.markSuccess(b.url);
      else o.book.markFailure(b.url, `readyz: ${ready.reason}`, Date.now(), o.cooldownMs);
      return ready.ok ? b : null;
    }),
  );
  const healthy = [...up, ...recovered.filter((b): b is BackendConfig => b !== null)];
  return weightedOrder(healthy.length > 0 ? healthy : backends);
}
