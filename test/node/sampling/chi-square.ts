/**
 * Pearson's chi-square goodness-of-fit test for the sampling statistics tests: the statistic, its p-value
 * from the regularised upper incomplete gamma function, and critical values by bisection.
 */

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7, nine terms; relative error ~1e-15). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Γ(a, x) / Γ(a): a power series below x = a + 1, a continued fraction (modified Lentz) above. */
function upperGammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const logPrefix = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000 && Math.abs(term) > Math.abs(sum) * 1e-16; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - Math.exp(logPrefix) * sum;
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(logPrefix) * h;
}

/** P(X ≥ statistic) for X ~ χ²(df). */
export function chiSquarePValue(statistic: number, df: number): number {
  return upperGammaQ(df / 2, statistic / 2);
}

/** The value a χ²(df) variable exceeds with probability `alpha`. */
export function chiSquareCritical(df: number, alpha: number): number {
  let lo = 0;
  let hi = Math.max(10, df * 10);
  while (chiSquarePValue(hi, df) > alpha) hi *= 2;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquarePValue(mid, df) > alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Result of comparing observed counts with expected probabilities. */
export interface ChiSquareResult {
  statistic: number;
  df: number;
  pValue: number;
  critical: number;
}

/**
 * Goodness of fit of `counts` (N draws) to `probs` over the tokens with positive probability. Tokens whose
 * expected count is under 5 are pooled into one bin (merged into the smallest bin if the pool itself is
 * under 5), as the chi-square approximation needs. `alpha` is the significance level of `critical`.
 */
export function chiSquareTest(counts: ArrayLike<number>, probs: ArrayLike<number>, alpha: number): ChiSquareResult {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  const bins: { observed: number; expected: number }[] = [];
  const pool = { observed: 0, expected: 0 };
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    const expected = probs[i] * n;
    if (expected >= 5) bins.push({ observed: counts[i], expected });
    else {
      pool.observed += counts[i];
      pool.expected += expected;
    }
  }
  if (pool.expected >= 5) bins.push(pool);
  else if (pool.expected > 0) {
    bins.sort((a, b) => a.expected - b.expected);
    bins[0].observed += pool.observed;
    bins[0].expected += pool.expected;
  }
  let statistic = 0;
  for (const b of bins) statistic += (b.observed - b.expected) ** 2 / b.expected;
  const df = bins.length - 1;
  return { statistic, df, pValue: chiSquarePValue(statistic, df), critical: chiSquareCritical(df, alpha) };
}
