/**
 * A stored completion replayed as the SSE stream the backend would have sent: for each choice a first chunk
 * with the role (chat) and the whole content, then a chunk with `finish_reason`; the usage chunk when the
 * client asked for it; `[DONE]`.
 */
import type { ChatCompletion, ChatCompletionChunk, TextCompletion } from '../../../shared/src/responses.ts';
import { SSE_DONE, sseEvent } from '../../../shared/src/sse.ts';

function chatEvents(c: ChatCompletion, includeUsage: boolean): string[] {
  const base = { id: c.id, object: 'chat.completion.chunk' as const, created: c.created, model: c.model, lambda: c.lambda };
  const usage = includeUsage ? { usage: null } : {};
  const out: string[] = [];
  for (const choice of c.choices) {
    const first: ChatCompletionChunk = {
      ...base,
      choices: [
        {
          index: choice.index,
          delta: { role: 'assistant', content: choice.message.content },
          logprobs: choice.logprobs,
          finish_reason: null,
        },
      ],
      ...usage,
    };
    const last: ChatCompletionChunk = {
      ...base,
      choices: [{ index: choice.index, delta: {}, logprobs: null, finish_reason: choice.finish_reason }],
      ...usage,
    };
    out.push(sseEvent(first), sseEvent(last));
  }
  if (includeUsage) out.push(sseEvent({ ...base, choices: [], usage: c.usage }));
  return out;
}

function textEvents(c: TextCompletion, includeUsage: boolean): string[] {
  const base = { id: c.id, object: 'text_completion' as const, created: c.created, model: c.model, lambda: c.lambda };
  const usage = includeUsage ? { usage: null } : {};
  const out: string[] = [];
  for (const choice of c.choices) {
    out.push(
      sseEvent({
        ...base,
        choices: [{ index: choice.index, text: choice.text, logprobs: choice.logprobs, finish_reason: null }],
        ...usage,
      }),
    );
    out.push(
      sseEvent({
        ...base,
        choices: [{ index: choice.index, text: '', logprobs: null, finish_reason: choice.finish_reason }],
        ...usage,
      }),
    );
  }
  if (includeUsage) out.push(sseEvent({ ...base, choices: [], usage: c.usage }));
  return out;
}

/** The whole replayed stream as text. */
export function replayAsSse(body: ChatCompletion | TextCompletion, includeUsage: boolean): string {
  const events = body.object === 'chat.completion' ? chatEvents(body, includeUsage) : textEvents(body, includeUsage);
  return events.join('') + SSE_DONE;
}
