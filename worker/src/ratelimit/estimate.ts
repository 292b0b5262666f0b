/**
 * Token estimates for admission, before the backend has counted: about 4 characters per token for text, the
 * exact length for token ids, plus `max_tokens` (or a default) per choice — of the resolved request, so a preset's
 * `max_tokens` counts. A `/v1/logits` request also costs one token per entry of its answer (positions × λ values ×
 * top_logprobs, see shared/src/logits-bounds.ts): its price follows the size of what it asks for. The estimate is
 * corrected with the real count when the response ends (RateLimiter.settle, ratelimit/charge.ts).
 */
import type { ChatCompletionRequest } from '../../../shared/src/chat-request.ts';
import type { CompletionRequest } from '../../../shared/src/completion-request.ts';
import type { LogitsRequest } from '../../../shared/src/logits-request.ts';
import { logitsAnswerEntries, logitsPositionCount } from '../../../shared/src/logits-bounds.ts';
import type { RequestByKind, RequestKind } from '../../../shared/src/parse-request.ts';

/** Completion tokens assumed per choice when `max_tokens` is unset. */
export const DEFAULT_COMPLETION_ESTIMATE = 256;

const textTokens = (text: string) => Math.ceil(text.length / 4);

/** Chat messages: their text plus a few tokens of template per message. */
const messageTokens = (messages: { content: string }[]) => messages.reduce((s, m) => s + textTokens(m.content) + 4, 0);

function promptTokens(
  kind: RequestKind,
  r: ChatCompletionRequest | CompletionRequest | LogitsRequest,
): { tokens: number; prompts: number } {
  if (kind === 'chat') return { tokens: messageTokens((r as ChatCompletionRequest).messages), prompts: 1 };
  if (kind === 'logits') {
    const l = r as LogitsRequest;
    if (l.input_ids) return { tokens: l.input_ids.length, prompts: 1 };
    if (l.prompt !== undefined) return { tokens: textTokens(l.prompt), prompts: 1 };
    return { tokens: messageTokens(l.messages ?? []), prompts: 1 };
  }
  const p = (r as CompletionRequest).prompt;
  if (typeof p === 'string') return { tokens: textTokens(p), prompts: 1 };
  if (typeof p[0] === 'number') return { tokens: p.length, prompts: 1 };
  if (typeof p[0] === 'string') return { tokens: (p as string[]).reduce((s, t) => s + textTokens(t), 0), prompts: p.length };
  return { tokens: (p as number[][]).reduce((s, ids) => s + ids.length, 0), prompts: p.length };
}

/** What a request is estimated to cost, in tokens. */
export interface TokenEstimate {
  /** Charged at admission: prompt + completion (+ answer entries for logits). */
  total: number;
  /** The prompt part: what a request the backend refuses after reading it still costs. */
  prompt: number;
  /** Entries of a logits answer (0 for generations): charged on top of the backend's count. */
  answerEntries: number;
  /** Positions a logits answer reports (the input's estimated token count for `positions: "all"`). */
  positions: number;
}

/** The logits answer's shape as the edge can foresee it (positions of a text input are estimated). */
export function logitsShape(l: LogitsRequest, promptEstimate: number) {
  return {
    positions: logitsPositionCount(l.positions, promptEstimate),
    lambdas: Math.max(1, l.lambdas?.length ?? 1),
    topLogprobs: l.top_logprobs,
    includeBranches: l.include_branches,
  };
}

/**
 * Estimated tokens of a resolved request (preset defaults applied). With the model's `context` known, each prompt
 * and each choice are capped by it: no request can be charged for more than its context could ever hold.
 */
export function estimateTokens<K extends RequestKind>(
  kind: K,
  request: RequestByKind[K],
  context: number | null = null,
): TokenEstimate {
  const { tokens, prompts } = promptTokens(kind, request);
  const prompt = Math.max(1, context === null ? tokens : Math.min(tokens, context * prompts));
  if (kind === 'logits') {
    const shape = logitsShape(request as LogitsRequest, prompt);
    const answerEntries = logitsAnswerEntries(shape);
    return { total: prompt + answerEntries, prompt, answerEntries, positions: shape.positions };
  }
  const g = request as ChatCompletionRequest | CompletionRequest;
  const perChoice = g.max_tokens ?? DEFAULT_COMPLETION_ESTIMATE;
  const capped = context === null ? perChoice : Math.max(1, Math.min(perChoice, context - Math.ceil(prompt / prompts)));
  return { total: prompt + capped * (g.n ?? 1) * prompts, prompt, answerEntries: 0, positions: 0 };
}
