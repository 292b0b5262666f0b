import { NonFiniteLogitsError } from '../sampling/sampler.ts';
import { topKIndices } from '../sampling/select.ts';

/**
 * log Σ exp over the finite entries of a logit row; NaN and ±∞ count as −∞ (never a token), as the sampler masks
 * them. −∞ when no entry is finite.
 */
export function logSumExp(row: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] - row[i] === 0 && row[i] > max) max = row[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < row.length; i++) if (row[i] - row[i] === 0) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/**
 * The k most likely tokens of a logit row with their log-probabilities (log-softmax over the finite entries).
 * Throws {@link NonFiniteLogitsError} when no entry is finite.
 */
export function topLogprobs(row: Float32Array, k: number): { token: number; logprob: number }[] {
  const lse = logSumExp(row);
  if (lse === -Infinity) throw NonFiniteLogitsError.forRow(row);
  const idx = new Int32Array(Math.min(k, row.length));
  const n = topKIndices(row, idx.length, idx);
  return Array.from(idx.subarray(0, n), (token) => ({ token, logprob: row[token] - lse }));
}
