/**
 * What a finished request finally costs its sender in tokens (the limiter is settled to this from the estimate
 * charged at admission). Edge-side validation refusals never reach here: they are answered before anything is
 * charged (pipeline/prepare.ts).
 */
import type { Usage } from '../../../shared/src/responses.ts';

/** The parts of a request's estimate that decide its final charge. */
export interface ChargeBasis {
  /** Charged at admission. */
  estimatedTokens: number;
  /** The prompt part of the estimate. */
  promptEstimate: number;
  /** Entries of a logits answer, charged on top of the backend's count (0 for generations). */
  answerEntries: number;
}

/**
 * The final charge:
 * - a cached answer costs no backend tokens: 0;
 * - an answer with the backend's usage: its total (+ the logits answer's entries: an answer's price follows its size);
 * - a success without usage, or a client that hung up (499): the estimate stays (the backend worked until then, and
 *   hanging up must not become a way around the token limit);
 * - a 4xx the backend answered after reading the request (a prompt too long after tokenizing, a bad token id): the
 *   prompt estimate — that work was done for the sender — except 404 (the edge granted a model the backend lacks)
 *   and 429 (the backend was busy), which are not the sender's doing;
 * - anything else (5xx, no backend reached): 0, a refund of what the sender did not cause.
 */
export function chargedTokens(basis: ChargeBasis, status: number, usage: Usage | null, cached: boolean): number {
  if (cached) return 0;
  if (usage !== null && Number.isFinite(usage.total_tokens)) return usage.total_tokens + basis.answerEntries;
  if (status < 400 || status === 499) return basis.estimatedTokens;
  if (status < 500 && status !== 404 && status !== 429) return basis.promptEstimate;
  return 0;
}
