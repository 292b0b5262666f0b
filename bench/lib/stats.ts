/** Small statistics for benchmarks: medians, percentiles, and A/B timings taken in turn. */

/** The p-th percentile (0..100) by linear interpolation. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const at = (p / 100) * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

/** The median. */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Summary of repeated timings in ms. */
export interface Timing {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  samples: number;
}

/** Summarises samples. */
export function summarize(ms: number[]): Timing {
  return { medianMs: median(ms), p10Ms: percentile(ms, 10), p90Ms: percentile(ms, 90), samples: ms.length };
}

/**
 * Times several variants in turn (A B C A B C …) so that drift in the machine's speed hits all of them alike;
 * returns each variant's samples. `warmup` rounds are not counted.
 */
export async function interleaved(
  variants: Record<string, () => Promise<void>>,
  rounds: number,
  warmup = 2,
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let r = 0; r < warmup + rounds; r++) {
    for (const [name, run] of Object.entries(variants)) {
      const t0 = performance.now();
      await run();
      const dt = performance.now() - t0;
      if (r >= warmup) out[name].push(dt);
    }
  }
  return out;
}

/** The median of pairwise ratios a[i] / b[i] (robust when the machine drifts between rounds). */
export function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}
