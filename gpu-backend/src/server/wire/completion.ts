/**
 * Chat and completions answers on the wire (shapes in shared/src/responses.ts): one JSON object collected from every
 * choice's events, or the server-sent chunks of a stream.
 */
import type {
  ChatCompletion,
  ChatCompletionChunk,
  CompletionLogprobs,
  TextCompletion,
  Usage,
} from '../../../../shared/src/responses.ts';
import { sseEvent } from '../../../../shared/src/sse.ts';
import type { GenerateEvent } from '../../engine/protocol.ts';
import type { TokenTexts } from '../../text/token-table.ts';
import type { PreparedGeneration } from '../prepare/generation.ts';
import type { ServedModel } from '../registry.ts';
import { appendCompletionLogprobs, chatLogprobs, completionId, completionLogprobs, wireFinish } from './format.ts';

/** What every object of one answer shares. */
export interface AnswerMeta {
  kind: 'chat' | 'completions';
  id: string;
  created: number;
  model: string;
  lambda: number;
  tok: TokenTexts;
  logprobs: boolean;
  topLogprobs: number;
}

/** The meta of a new answer of `kind` (a fresh id, created now). */
export function answerMeta(kind: 'chat' | 'completions', model: ServedModel, prep: PreparedGeneration): AnswerMeta {
  return {
    kind,
    id: completionId(kind === 'chat' ? 'chatcmpl' : 'cmpl'),
    created: Math.floor(Date.now() / 1000),
    model: model.config.id,
    lambda: prep.lambda,
    tok: model.tokenizer,
    logprobs: prep.logprobs,
    topLogprobs: prep.topLogprobs,
  };
}

/** Collects the events of every choice into one ChatCompletion or TextCompletion. */
export class CompletionCollector {
  readonly texts: string[];
  private readonly chatLp: ReturnType<typeof chatLogprobs>[];
  private readonly compLp: CompletionLogprobs[];

  constructor(
    private readonly meta: AnswerMeta,
    choices: number,
  ) {
    this.texts = Array.from({ length: choices }, () => '');
    this.chatLp = Array.from({ length: choices }, () => []);
    this.compLp = Array.from({ length: choices }, () => ({
      tokens: [],
      token_logprobs: [],
      top_logprobs: meta.topLogprobs > 0 ? [] : null,
      text_offset: [],
    }));
  }

  add(index: number, ev: GenerateEvent): void {
    const m = this.meta;
    if (m.logprobs) {
      if (m.kind === 'chat') this.chatLp[index].push(...chatLogprobs(m.tok, ev.tokens));
      else
        appendCompletionLogprobs(
          this.compLp[index],
          completionLogprobs(m.tok, ev.tokens, this.texts[index].length, m.topLogprobs > 0),
        );
    }
    this.texts[index] += ev.text;
  }

  body(finals: GenerateEvent[], usage: Usage): ChatCompletion | TextCompletion {
    const { kind, id, created, model, lambda, logprobs } = this.meta;
    if (kind === 'chat') {
      const choices = this.texts.map((text, index) => ({
        index,
        message: { role: 'assistant' as const, content: text },
        logprobs: logprobs ? { content: this.chatLp[index] } : null,
        finish_reason: wireFinish(finals[index]),
      }));
      return { id, object: 'chat.completion', created, model, lambda, choices, usage };
    }
    const choices = this.texts.map((text, index) => ({
      index,
      text,
      logprobs: logprobs ? this.compLp[index] : null,
      finish_reason: wireFinish(finals[index]),
    }));
    return { id, object: 'text_completion', created, model, lambda, choices, usage };
  }
}

/** The server-sent events of a streamed answer, chunk by chunk. */
export class ChunkWriter {
  private readonly offsets: number[];

  constructor(
    private readonly meta: AnswerMeta,
    choices: number,
    private readonly includeUsage: boolean,
  ) {
    this.offsets = Array.from({ length: choices }, () => 0);
  }

  private chunk(choices: ChatCompletionChunk['choices'] | TextCompletion['choices']): ChatCompletionChunk | TextCompletion {
    const { id, created, model, lambda } = this.meta;
    const usage = this.includeUsage ? { usage: null } : {};
    if (this.meta.kind === 'chat')
      return {
        id,
        created,
        model,
        lambda,
        object: 'chat.completion.chunk',
        choices: choices as ChatCompletionChunk['choices'],
        ...usage,
      };
    return { id, created, model, lambda, object: 'text_completion', choices: choices as TextCompletion['choices'], ...usage };
  }

  /** The events before any token: a chat stream's role delta of each choice. */
  opening(choices: number): string[] {
    if (this.meta.kind !== 'chat') return [];
    return Array.from({ length: choices }, (_, index) =>
      sseEvent(this.chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])),
    );
  }

  /** The event of one engine event's text and tokens, or null when it carries none to show. */
  tokens(index: number, ev: GenerateEvent): string | null {
    const { kind, tok, logprobs, topLogprobs } = this.meta;
    if (ev.text === '' && !(logprobs && ev.tokens.length > 0)) return null;
    let out: string;
    if (kind === 'chat') {
      const lp = logprobs ? { content: chatLogprobs(tok, ev.tokens) } : null;
      out = sseEvent(this.chunk([{ index, delta: { content: ev.text }, logprobs: lp, finish_reason: null }]));
    } else {
      const lp = logprobs ? completionLogprobs(tok, ev.tokens, this.offsets[index], topLogprobs > 0) : null;
      out = sseEvent(this.chunk([{ index, text: ev.text, logprobs: lp, finish_reason: null }]));
    }
    this.offsets[index] += ev.text.length;
    return out;
  }

  /** The event that ends choice `index`. */
  finish(index: number, ev: GenerateEvent): string {
    const reason = wireFinish(ev);
    if (this.meta.kind === 'chat') return sseEvent(this.chunk([{ index, delta: {}, logprobs: null, finish_reason: reason }]));
    return sseEvent(this.chunk([{ index, text: '', logprobs: null, finish_reason: reason }]));
  }

  /** The usage chunk (no choices) a client asked for with `stream_options.include_usage`. */
  usage(usage: Usage): string {
    return sseEvent({ ...this.chunk([]), usage });
  }
}
