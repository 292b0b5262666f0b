/** Learning-rate schedule: linear warmup, then cosine decay to a floor. */

/** Schedule parameters. */
export interface LrSchedule {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** the floor as a fraction of the peak (default 0.1) */
  minRatio: number;
}

/** The learning rate of optimizer step `step` (0-based). */
export function learningRate(s: LrSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const floor = s.peak * s.minRatio;
  return floor + (s.peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
