/**
 * Passive health of the backends, per isolate: a backend that refused a connection, answered a 5xx of its own state
 * (not one request's failure: shared/src/failure-scope.ts), stalled or broke a stream is taken out of rotation for a
 * cooldown; after the cooldown it is on probation and must pass a `/readyz` probe before it gets traffic again. A
 * backend's answer that one of its models cannot serve (loading, failed to load, its engine gone) takes only that
 * (backend, model) pair out of rotation, the same way: the backend's other models keep it. Each isolate learns on its
 * own (no shared state to go stale or to wait on); a wrong guess costs one retry.
 */

/** What is known about one backend, or one model on one backend. */
export interface HealthEntry {
  /** Consecutive failures. */
  failures: number;
  /** Unix ms before which the backend (or the model there) gets no traffic. */
  downUntil: number;
  lastError: string;
}

/** `up`: no recent failure; `down`: cooling down; `probation`: cooled down, needs a probe. */
export type HealthState = 'up' | 'down' | 'probation';

/** The key of a model's entry (a URL holds no newline). */
function modelKey(url: string, model: string): string {
  return `${url}\n${model}`;
}

/** The per-isolate record of backend failures (a backend's, and a model's on a backend). */
export class HealthBook {
  private readonly entries = new Map<string, HealthEntry>();

  /**
   * The state of `url` at `now`; with `model`, of that model on it: the backend's own state, made worse by the
   * model's (down if either is down, else on probation if either is).
   */
  state(url: string, now: number, model?: string): HealthState {
    const backend = this.stateOf(url, now);
    if (model === undefined || backend === 'down') return backend;
    const own = this.stateOf(modelKey(url, model), now);
    return own === 'up' ? backend : own;
  }

  /**
   * Records a failure of the backend, or with `model` of that model there only; the cooldown grows with consecutive
   * failures (×2 each, at most ×8).
   */
  markFailure(url: string, reason: string, now: number, cooldownMs: number, model?: string): void {
    const key = model === undefined ? url : modelKey(url, model);
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    this.entries.set(key, { failures, downUntil: now + cooldownMs * Math.min(8, 2 ** (failures - 1)), lastError: reason });
  }

  /** Records a success: the backend is up again, and with `model` that model there too. */
  markSuccess(url: string, model?: string): void {
    this.entries.delete(url);
    if (model !== undefined) this.entries.delete(modelKey(url, model));
  }

  private stateOf(key: string, now: number): HealthState {
    const e = this.entries.get(key);
    if (e === undefined || e.failures === 0) return 'up';
    return now < e.downUntil ? 'down' : 'probation';
  }
}

/** The isolate's health book. */
export const healthBook = new HealthBook();
