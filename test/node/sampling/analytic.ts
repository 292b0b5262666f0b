import type { SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';

/**
 * The distribution the sampler should draw from, by the definitions and nothing clever: sort every finite
 * logit (descending, ties to the lower id), keep top_k, softmax at the temperature, keep the nucleus (a token
 * stays while the probability ranked above it is below top_p), drop tokens under min_p × the best, renormalise.
 */
export function analyticDistribution(
  logits: ArrayLike<number>,
  p: Pick<SamplingParams, 'temperature' | 'top_k' | 'top_p' | 'min_p'>,
): Float64Array {
  const order = Array.from({ length: logits.length }, (_, i) => i)
    .filter((i) => Number.isFinite(logits[i]))
    .sort((a, b) => logits[b] - logits[a] || a - b);
  let kept = p.top_k > 0 ? order.slice(0, p.top_k) : order;
  const max = logits[kept[0]];
  const weight = (i: number) => Math.exp((logits[i] - max) / p.temperature);
  const total = kept.reduce((s, i) => s + weight(i), 0);
  if (p.top_p < 1) {
    let above = 0;
    kept = kept.filter((i) => {
      const keep = above < p.top_p * total;
      above += weight(i);
      return keep;
    });
  }
  if (p.min_p > 0) kept = kept.filter((i) => weight(i) >= p.min_p);
  const keptTotal = kept.reduce((s, i) => s + weight(i), 0);
  const probs = new Float64Array(logits.length);
  for (const i of kept) probs[i] = weight(i) / keptTotal;
  return probs;
}
