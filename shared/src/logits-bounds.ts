/**
 * How big a `/v1/logits` answer gets, for both halves: the edge refuses (and charges by) what the backend would
 * refuse, and the backend bounds what it computes and serializes. An answer holds one entry (token id, token text,
 * logprob) per reported position × distribution × alternative, where the distributions are the λ blends plus, with
 * `include_branches`, the aligned and the reference branch.
 */
import { invalidRequest, type ApiError } from './errors.ts';

/** Default bound on the entries of one logits answer (about 5 MB of JSON at {@link LOGITS_ENTRY_WIRE_BYTES}). */
export const DEFAULT_MAX_LOGITS_ENTRIES = 65_536;

/**
 * A generous estimate of one entry's JSON bytes: `{"token_id":151643,"token":"…","logprob":-12.345678901234567},`
 * is ~60 bytes plus the token's text (escaped); ordinary vocabularies keep tokens well under 40 bytes.
 */
export const LOGITS_ENTRY_WIRE_BYTES = 100;

/** What decides a logits answer's size. */
export interface LogitsAnswerShape {
  /** positions reported: 1 for `positions: "last"`, the input's token count for `"all"` */
  positions: number;
  /** λ values blended */
  lambdas: number;
  /** alternatives per position and distribution (`top_logprobs`) */
  topLogprobs: number;
  /** whether the two branches' own distributions are reported too (`include_branches` on a two-branch model) */
  includeBranches: boolean;
}

/** Positions a request reports: 1 for `"last"`, every input token for `"all"`. */
export function logitsPositionCount(positions: 'last' | 'all', inputTokens: number): number {
  return positions === 'all' ? inputTokens : 1;
}

/** Entries of the answer: positions × (λ count + 2 with branches) × top_logprobs. */
export function logitsAnswerEntries(s: LogitsAnswerShape): number {
  return s.positions * (s.lambdas + (s.includeBranches ? 2 : 0)) * s.topLogprobs;
}

/** An upper estimate of the answer's bytes (entries × {@link LOGITS_ENTRY_WIRE_BYTES}), e.g. for charging by size. */
export function logitsAnswerBytesEstimate(s: LogitsAnswerShape): number {
  return logitsAnswerEntries(s) * LOGITS_ENTRY_WIRE_BYTES;
}

/**
 * The 400 for an answer over `maxEntries`, naming the fields that multiply into it, or null when it fits.
 * `param` is the field most worth changing: `positions` when it is `"all"`, else `top_logprobs`.
 */
export function checkLogitsAnswerSize(s: LogitsAnswerShape, maxEntries: number): ApiError | null {
  const entries = logitsAnswerEntries(s);
  if (entries <= maxEntries) return null;
  const distributions = s.lambdas + (s.includeBranches ? 2 : 0);
  const what = `${s.positions} position${s.positions === 1 ? '' : 's'} (\`positions\`) × ${distributions} distribution${distributions === 1 ? '' : 's'} (${s.lambdas} \`lambdas\`${s.includeBranches ? ' + 2 for `include_branches`' : ''}) × ${s.topLogprobs} \`top_logprobs\``;
  return invalidRequest(
    `this logits answer would hold ${entries} entries: ${what}; this server answers at most ${maxEntries}. Ask for positions "last", fewer lambdas, a smaller top_logprobs or no include_branches`,
    s.positions > 1 ? 'positions' : 'top_logprobs',
    'logits_answer_too_large',
  );
}
