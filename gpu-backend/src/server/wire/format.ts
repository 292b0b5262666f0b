/** Engine output → OpenAI wire objects (shapes in shared/src/responses.ts). */
import type { ChatTokenLogprob, CompletionLogprobs, FinishReason, TopLogprob, Usage } from '../../../../shared/src/responses.ts';
import type { GenerateEvent, TokenOut } from '../../engine/protocol.ts';
import type { TokenTexts } from '../../text/token-table.ts';

/** A token's wire form: its text (or `bytes:\xNN` for partial characters) and its bytes. */
export function tokenWire(tok: TokenTexts, id: number, logprob: number): TopLogprob {
  return { token: tok.tokenString(id), logprob, bytes: tok.tokenBytes(id) };
}

/** Chat logprobs of the tokens of one event. */
export function chatLogprobs(tok: TokenTexts, tokens: TokenOut[]): ChatTokenLogprob[] {
  return tokens
    .filter((t) => t.logprob !== undefined)
    .map((t) => ({
      ...tokenWire(tok, t.id, t.logprob!),
      top_logprobs: (t.top ?? []).map((x) => tokenWire(tok, x.token, x.logprob)),
    }));
}

/** Completions logprobs of the tokens of one event; `offset` is the text length before them. */
export function completionLogprobs(tok: TokenTexts, tokens: TokenOut[], offset: number, withTop: boolean): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: withTop ? [] : null, text_offset: [] };
  let at = offset;
  for (const t of tokens) {
    if (t.logprob === undefined) continue;
    const s = tok.tokenString(t.id);
    out.tokens.push(s);
    out.token_logprobs.push(t.logprob);
    out.text_offset.push(at);
    at += s.length;
    if (withTop) out.top_logprobs!.push(Object.fromEntries((t.top ?? []).map((x) => [tok.tokenString(x.token), x.logprob])));
  }
  return out;
}

/** Merges completions logprobs of successive events. */
export function appendCompletionLogprobs(into: CompletionLogprobs, more: CompletionLogprobs): void {
  into.tokens.push(...more.tokens);
  into.token_logprobs.push(...more.token_logprobs);
  into.text_offset.push(...more.text_offset);
  if (into.top_logprobs && more.top_logprobs) into.top_logprobs.push(...more.top_logprobs);
}

/** The wire finish reason (cancelled and error never reach a client as a finish reason). */
export function wireFinish(ev: GenerateEvent): FinishReason {
  return ev.finish === 'length' ? 'length' : 'stop';
}

/**
 * Usage of a request from its choices' final events: prompts counted once per prompt, per branch as computed; a
 * request with a mix (several named adapters) also reports the mix it ran and each adapter's tokens.
 */
export function usageOf(finals: GenerateEvent[], promptsOnce: number, lambda: number, mix?: Record<string, number>): Usage {
  const sum = { prompt_tokens: promptsOnce, completion_tokens: 0 };
  const branches = { aligned: { prompt_tokens: 0, completion_tokens: 0 }, reference: { prompt_tokens: 0, completion_tokens: 0 } };
  const adapters: Record<string, { prompt_tokens: number; completion_tokens: number }> = {};
  for (const ev of finals) {
    const u = ev.usage;
    if (!u) continue;
    sum.completion_tokens += u.completion_tokens;
    for (const b of ['aligned', 'reference'] as const) {
      branches[b].prompt_tokens += u[b].prompt_tokens;
      branches[b].completion_tokens += u[b].completion_tokens;
    }
    // several named adapters: the tokens of each adapter's branch
    for (const [name, t] of Object.entries(u.adapters ?? {})) {
      const into = (adapters[name] ??= { prompt_tokens: 0, completion_tokens: 0 });
      into.prompt_tokens += t.prompt_tokens;
      into.completion_tokens += t.completion_tokens;
    }
  }
  const realign = {
    lambda,
    branches,
    ...(mix === undefined ? {} : { mix }),
    ...(Object.keys(adapters).length > 0 ? { adapters } : {}),
  };
  return { ...sum, total_tokens: sum.prompt_tokens + sum.completion_tokens, realign };
}

/** A request id in OpenAI's style. */
export function completionId(prefix: 'chatcmpl' | 'cmpl' | 'logits'): string {
  return `${prefix}-${crypto.randomUUID().replace(/-/g, '').slice(0, 24)}`;
}
