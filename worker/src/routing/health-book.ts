/**
 * Passive health of the backends, per isolate: a backend that refused a connection, answered a 5xx of its own state
 * (not one request's failure: shared/src/failure-scope.ts), stalled or broke a stream is taken out of rotation for a
 * cooldown; after the cooldown it is on probation and must pass a `/readyz` probe before it gets traffic again. Each
 * isolate learns on its own (no shared state to go stale or to wait on); a wrong guess costs one retry.
 */

/** What is known about one backend. */
export interface HealthEntry {
  /** Consecutive failures. */
  failures: number;
  /** Unix ms before which the backend gets no traffic. */
  downUntil: number;
  lastError: string;
}

/** `up`: no recent failure; `down`: cooling down; `probation`: cooled down, needs a probe. */
export type HealthState = 'up' | 'down' | 'probation';

/** The per-isolate record of backend failures. */
export class HealthBook {
  private readonly entries = new Map<string, HealthEntry>();

  /** The state of `url` at `now`. */
  state(url: string, now: number): HealthState {
    const e = this.entries.get(url);
    if (e === undefined || e.failures === 0) return 'up';
    return now < e.downUntil ? 'down' : 'probation';
  }

  /** Records a failure; the cooldown grows with consecutive failures (×2 each, at most ×8). */
  markFailure(url: string, reason: string, now: number, cooldownMs: number): void {
    const failures = (this.entries.get(url)?.failures ?? 0) + 1;
    this.entries.set(url, { failures, downUntil: now + cooldownMs * Math.min(8, 2 ** (failures - 1)), lastError: reason });
  }

  /** Records a success: the backend is up again. */
  markSuccess(url: string): void {
    this.entries.delete(url);
  }
}

/** The isolate's health book. */
export const healthBook = new HealthBook();
