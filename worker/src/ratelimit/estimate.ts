/**
 * Token estimates for admission, before the backend has counted: about 4 characters per token for text, the
 * exact length for token ids, plus `max_tokens` (or a default) per choice. The estimate is corrected with the
 * real count when the response ends (RateLimiter.settle).
 */
import type { ChatCompletionRequest } from '../../../shared/src/chat-request.ts';
import type { CompletionRequest } from '../../../shared/src/completion-request.ts';
import type { LogitsRequest } from '../../../shared/src/logits-request.ts';
import type { RequestByKind, RequestKind } from '../../../shared/src/parse-request.ts';

/** Completion tokens assumed per choice when `max_tokens` is unset. */
export const DEFAULT_COMPLETION_ESTIMATE = 256;

const textTokens = (text: string) => Math.ceil(text.length / 4);

/** Chat messages: their text plus a few tokens of template per message. */
const messageTokens = (messages: { content: string }[]) => messages.reduce((s, m) => s + textTokens(m.content) + 4, 0);

function promptTokens(kind: RequestKind, r: ChatCompletionRequest | CompletionRequest | LogitsRequest): { tokens: number; prompts: number } {
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

/** Estimated total tokens of a request (prompt + completion). */
export function estimateTokens<K extends RequestKind>(kind: K, request: RequestByKind[K]): number {
  const { tokens, prompts } = promptTokens(kind, request);
  if (kind === 'logits') return Math.max(1, tokens);
  const g = request as ChatCompletionRequest | CompletionRequest;
  return Math.max(1, tokens + (g.max_tokens ?? DEFAULT_COMPLETION_ESTIMATE) * (g.n ?? 1) * prompts);
}
