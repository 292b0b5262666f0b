/**
 * Rebuilds a finished completion from the chunks of a stream, so that a streamed MISS can fill the cache.
 * The client's stream is never held back for this: the assembler only looks at events as they pass.
 * Returns null when the stream was not a complete, well-formed completion (then nothing is stored).
 */
import {
  readUsage,
  type ChatCompletion,
  type ChatTokenLogprob,
  type CompletionLogprobs,
  type FinishReason,
  type TextCompletion,
  type Usage,
} from '../../../shared/src/responses.ts';

interface ChoiceState {
  text: string;
  finish: FinishReason | null;
  chatLogprobs: ChatTokenLogprob[] | null;
  textLogprobs: CompletionLogprobs | null;
}

type Chunk = { id?: unknown; object?: unknown; created?: unknown; model?: unknown; lambda?: unknown; choices?: unknown };

/** Collects chunks of one chat or text completion stream. */
export class StreamAssembler {
  private head: { id: string; object: string; created: number; model: string; lambda: number } | null = null;
  private readonly choices = new Map<number, ChoiceState>();
  private usage: Usage | null = null;
  private broken = false;

  /** Feeds one parsed event; `usage` is its `readUsage`, for a caller that has already read it. */
  add(event: unknown, usage: Usage | null = readUsage(event)): void {
    if (this.broken || typeof event !== 'object' || event === null) return;
    const c = event as Chunk;
    if (usage) this.usage = usage;
    if (this.head === null) {
      if (
        typeof c.id !== 'string' ||
        typeof c.object !== 'string' ||
        typeof c.created !== 'number' ||
        typeof c.model !== 'string' ||
        typeof c.lambda !== 'number'
      ) {
        this.broken = true;
        return;
      }
      this.head = { id: c.id, object: c.object, created: c.created, model: c.model, lambda: c.lambda };
    }
    if (!Array.isArray(c.choices)) return;
    for (const raw of c.choices as Record<string, unknown>[]) {
      const index = typeof raw.index === 'number' ? raw.index : 0;
      const st = this.choices.get(index) ?? { text: '', finish: null, chatLogprobs: null, textLogprobs: null };
      const delta = raw.delta as { content?: unknown } | undefined;
      if (typeof delta?.content === 'string') st.text += delta.content;
      if (typeof raw.text === 'string') st.text += raw.text;
      if (raw.finish_reason === 'stop' || raw.finish_reason === 'length') st.finish = raw.finish_reason;
      this.addLogprobs(st, raw.logprobs);
      this.choices.set(index, st);
    }
  }

  private addLogprobs(st: ChoiceState, lp: unknown): void {
    if (typeof lp !== 'object' || lp === null) return;
    const chat = (lp as { content?: unknown }).content;
    if (Array.isArray(chat)) {
      st.chatLogprobs = [...(st.chatLogprobs ?? []), ...(chat as ChatTokenLogprob[])];
      return;
    }
    const t = lp as CompletionLogprobs;
    if (!Array.isArray(t.tokens)) return;
    const acc = st.textLogprobs ?? { tokens: [], token_logprobs: [], top_logprobs: t.top_logprobs ? [] : null, text_offset: [] };
    acc.tokens.push(...t.tokens);
    acc.token_logprobs.push(...(t.token_logprobs ?? []));
    acc.text_offset.push(...(t.text_offset ?? []));
    if (acc.top_logprobs && t.top_logprobs) acc.top_logprobs.push(...t.top_logprobs);
    st.textLogprobs = acc;
  }

  /** The completion, or null when incomplete (a choice without finish_reason, no usage, unknown object). */
  result(): ChatCompletion | TextCompletion | null {
    const h = this.head;
    if (this.broken || h === null || this.usage === null || this.choices.size === 0) return null;
    const choices = [...this.choices].sort(([a], [b]) => a - b);
    if (choices.some(([, s]) => s.finish === null)) return null;
    const base = { id: h.id, created: h.created, model: h.model, lambda: h.lambda, usage: this.usage };
    if (h.object === 'chat.completion.chunk') {
      return {
        ...base,
        object: 'chat.completion',
        choices: choices.map(([index, s]) => ({
          index,
          message: { role: 'assistant' as const, content: s.text },
          logprobs: s.chatLogprobs ? { content: s.chatLogprobs } : null,
          finish_reason: s.finish!,
        })),
      };
    }
    if (h.object === 'text_completion') {
      return {
        ...base,
        object: 'text_completion',
        choices: choices.map(([index, s]) => ({ index, text: s.text, logprobs: s.textLogprobs, finish_reason: s.finish })),
      };
    }
    return null;
  }
}
