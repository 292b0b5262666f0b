/**
 * The size of a `/v1/logits` answer, and its bound, shared by both halves: the edge refuses (and charges by) the
 * size it can foresee before forwarding (the position count of a text input is its estimate there), the backend
 * refuses with the exact position count after tokenizing. Both default to {@link DEFAULT_MAX_LOGITS_ENTRIES}.
 *
 * An answer holds `top_logprobs` entries for every reported position and every distribution: one per λ value, plus
 * the aligned and the reference branch when `include_branches` is set. An entry is at most about 100 bytes of
 * JSON (`{"token_id": …, "token": "…", "logprob": …}`), so the default bound keeps an answer under about 26 MB.
 */
import { invalidRequest, type ApiError } from './errors.ts';

/** Default most entries (positions × distributions × top_logprobs) of one logits answer. */
export const DEFAULT_MAX_LOGITS_ENTRIES = 262_144;

/** Bytes of JSON assumed per entry by {@link logitsAnswerBytesEstimate}. */
export const LOGITS_ENTRY_BYTES = 100;

/** What decides the size of a logits answer. */
export interface LogitsAnswerShape {
  /** Positions reported: see {@link logitsPositionCount}. */
  positions: number;
  /** λ values requested (at least 1). */
  lambdas: number;
  topLogprobs: number;
  includeBranches: boolean;
}

/** Positions a request reports: 1 for `positions: "last"`, every input token for `"all"`. */
export function logitsPositionCount(mode: 'last' | 'all', inputTokens: number): number {
  return mode === 'last' ? 1 : inputTokens;
}

/** Entries of the answer: positions × (λ values + 2 branches if included) × top_logprobs. */
export function logitsAnswerEntries(s: LogitsAnswerShape): number {
  return s.positions * (s.lambdas + (s.includeBranches ? 2 : 0)) * s.topLogprobs;
}

/** An upper estimate of the answer's JSON size in bytes. */
export function logitsAnswerBytesEstimate(s: LogitsAnswerShape): number {
  return logitsAnswerEntries(s) * LOGITS_ENTRY_BYTES;
}

/**
 * A 400 naming the fields when the answer would hold more than `maxEntries` entries, else null. `param` is
 * `positions` when more than one position is reported, else `top_logprobs`.
 */
export function checkLogitsAnswerSize(s: LogitsAnswerShape, maxEntries: number = DEFAULT_MAX_LOGITS_ENTRIES): ApiError | null {
  const entries = logitsAnswerEntries(s);
  if (entries <= maxEntries) return null;
  const dists = `${s.lambdas} λ value(s) (\`lambdas\`)${s.includeBranches ? ' + 2 branches (`include_branches`)' : ''}`;
  return invalidRequest(
    `this answer would hold ${s.positions} position(s) (\`positions\`) × ${dists} × ${s.topLogprobs} (\`top_logprobs\`) = ${entries} entries; ` +
      `at most ${maxEntries} are allowed: lower \`top_logprobs\`, send fewer \`lambdas\`, drop \`include_branches\`, or use \`positions: "last"\` or a shorter input`,
    s.positions > 1 ? 'positions' : 'top_logprobs',
    'logits_answer_too_large',
  );
}
