/**
 * Token-bucket arithmetic, pure. A bucket holds up to `capacity` units and refills at `capacity` per minute
 * (so "N per minute" allows a burst of N). Levels may go below zero when a request's real token count exceeds
 * its estimate: the debt delays later requests instead of being forgiven.
 */

/** Stored state of one bucket. */
export interface BucketState {
  level: number;
  /** Unix ms of the last update. */
  updatedAt: number;
}

/** Milliseconds in the refill period. */
export const PERIOD_MS = 60_000;

/** The bucket's level at `now` after refilling (capped at `capacity`). A missing bucket is full. */
export function refill(state: BucketState | undefined, capacity: number, now: number): BucketState {
  if (state === undefined) return { level: capacity, updatedAt: now };
  const elapsed = Math.max(0, now - state.updatedAt);
  return { level: Math.min(capacity, state.level + (elapsed * capacity) / PERIOD_MS), updatedAt: now };
}

/** Milliseconds until the bucket holds `amount` (0 if it already does). */
export function msUntil(state: BucketState, capacity: number, amount: number): number {
  const missing = Math.min(amount, capacity) - state.level;
  return missing <= 0 ? 0 : Math.ceil((missing * PERIOD_MS) / capacity);
}

/** Milliseconds until the bucket is full again. */
export function msUntilFull(state: BucketState, capacity: number): number {
  return msUntil(state, capacity, capacity);
}
