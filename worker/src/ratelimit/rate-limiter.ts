/**
 * The rate limiter: one Durable Object per tenant holds token buckets for requests/min and tokens/min, for the
 * tenant and for each of its keys. A request passes only if every bucket has room; then all are charged at once.
 * Each method runs without awaiting (synchronous SQLite-backed KV), so calls are atomic.
 */
import { DurableObject } from 'cloudflare:workers';
import type { AcquireResult, DimensionReport, ScopeLimits } from './limits.ts';
import { msUntil, msUntilFull, refill, type BucketState } from './token-bucket.ts';

type Dimension = 'req' | 'tok';

/** Durable Object class bound as RATE_LIMITER. */
export class RateLimiter extends DurableObject<Env> {
  private load(scope: string, dim: Dimension, capacity: number, now: number): BucketState {
    return refill(this.ctx.storage.kv.get<BucketState>(`${scope}:${dim}`), capacity, now);
  }

  private save(scope: string, dim: Dimension, state: BucketState): void {
    this.ctx.storage.kv.put(`${scope}:${dim}`, state);
  }

  /**
   * Takes one request and `tokens` tokens from every scope's buckets if all have room. A cost above a token
   * bucket's capacity is refused outright (`oversized`) and charges nothing: it could never fit, and letting it
   * through a full bucket would bank its excess as debt. Returns what to report in headers either way.
   */
  acquire(limits: ScopeLimits[], tokens: number): AcquireResult {
    const now = Date.now();
    const over = limits.find((l) => tokens > l.tokensPerMinute);
    const buckets = limits.flatMap((l) => [
      { scope: l.scope, dim: 'req' as const, capacity: l.requestsPerMinute, cost: 1 },
      { scope: l.scope, dim: 'tok' as const, capacity: l.tokensPerMinute, cost: tokens },
    ]);
    const states = buckets.map((b) => this.load(b.scope, b.dim, b.capacity, now));
    const waits = buckets.map((b, i) => msUntil(states[i]!, b.capacity, b.cost));
    const retryAfterMs = over ? 0 : Math.max(0, ...waits);
    const allowed = over === undefined && retryAfterMs === 0;
    const worst = buckets[waits.indexOf(retryAfterMs)]!;
    buckets.forEach((b, i) => {
      const s = states[i]!;
      if (allowed) s.level -= b.cost;
      this.save(b.scope, b.dim, s);
    });
    const report = (dim: Dimension): DimensionReport => {
      let best: DimensionReport | null = null;
      buckets.forEach((b, i) => {
        if (b.dim !== dim) return;
        const s = states[i]!;
        const r = { limit: b.capacity, remaining: Math.max(0, Math.floor(s.level)), resetMs: msUntilFull(s, b.capacity) };
        if (best === null || r.remaining < best.remaining) best = r;
      });
      return best ?? { limit: 0, remaining: 0, resetMs: 0 };
    };
    const limitedBy = allowed ? null : over ? 'tokens' : worst.dim === 'req' ? 'requests' : 'tokens';
    const oversized = over ? { scope: over.scope, tokensPerMinute: over.tokensPerMinute } : null;
    return { allowed, retryAfterMs, limitedBy, oversized, requests: report('req'), tokens: report('tok') };
  }

  /**
   * Corrects the token buckets once the real count is known: `delta` > 0 charges more, < 0 refunds. The debt a
   * correction can leave is bounded by one bucket (one minute of the limit), so no answer locks a scope out longer.
   */
  settle(limits: ScopeLimits[], delta: number): void {
    if (delta === 0 || !Number.isFinite(delta)) return;
    const now = Date.now();
    for (const l of limits) {
      const s = this.load(l.scope, 'tok', l.tokensPerMinute, now);
      s.level = Math.max(-l.tokensPerMinute, Math.min(l.tokensPerMinute, s.level - delta));
      this.save(l.scope, 'tok', s);
    }
  }

  /** Applies {@link settle} for each entry, in one call (the usage consumer settles a whole batch at once). */
  settleMany(entries: { scopes: ScopeLimits[]; delta: number }[]): void {
    for (const e of entries) this.settle(e.scopes, e.delta);
  }

  /** Forgets every bucket (the tenant generation was deleted). */
  async forget(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
