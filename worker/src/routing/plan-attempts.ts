/**
 * Which backends to try for a request to a model, in which order: a weighted random order of the healthy ones —
 * the backend up and the model up there (on probation, either joins after passing a `/readyz` probe for the model).
 * When none is healthy, all are tried anyway — a stale health record must not turn into an outage.
 */
import type { BackendConfig, EdgeConfig } from '../config.ts';
import type { HealthBook } from './health-book.ts';
import { probeAndRecord } from './probe.ts';

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

/** The order in which to try `config.backends` for one request (to `model`, the id the backends serve it under). */
export async function planAttempts(config: EdgeConfig, book: HealthBook, model?: string): Promise<BackendConfig[]> {
  const now = Date.now();
  const up = config.backends.filter((b) => book.state(b.url, now, model) === 'up');
  const probation = config.backends.filter((b) => book.state(b.url, now, model) === 'probation');
  const recovered = await Promise.all(
    probation.map(async (b) => ((await probeAndRecord(book, b.url, config, model)).ok ? b : null)),
  );
  const healthy = [...up, ...recovered.filter((b): b is BackendConfig => b !== null)];
  return weightedOrder(healthy.length > 0 ? healthy : config.backends);
}
