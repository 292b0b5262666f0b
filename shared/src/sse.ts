/**
 * Server-sent events as OpenAI streams them: each event is `data: <json>\n\n`, the stream ends with
 * `data: [DONE]\n\n`. A failure after the stream began is one event `data: {"error": {...}}` and then the
 * stream closes without `[DONE]` (the OpenAI SDKs raise an error on such an event).
 */
import type { ErrorBody } from './errors.ts';

/** The terminating event. */
export const SSE_DONE = 'data: [DONE]\n\n';

/** The `data` of the terminating event. */
export const SSE_DONE_DATA = '[DONE]';

/** Content type of an event stream. */
export const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** One event carrying `value` as JSON. */
export function sseEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** The event that reports a failure mid-stream. */
export function sseErrorEvent(body: ErrorBody): string {
  return sseEvent(body);
}

/**
 * Splits a text stream into complete events. Feed it decoded text as it arrives; it returns the events that are
 * complete so far (raw, without the blank-line terminator) and keeps only the unfinished tail.
 */
export class SseSplitter {
  private tail = '';

  /** Adds text; returns the events it completed. Accepts `\n\n`, `\r\n\r\n` and `\r\r` separators. */
  push(text: string): string[] {
    this.tail += text;
    const events: string[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.tail);
      if (m === null) break;
      events.push(this.tail.slice(0, m.index));
      this.tail = this.tail.slice(m.index + m[0].length);
    }
    return events;
  }

  /** The unfinished tail at the end of the stream ('' when the stream ended cleanly). */
  rest(): string {
    return this.tail;
  }
}

/** The `data` of a raw event (data lines joined by "\n"), or null for an event without data (a comment, a ping). */
export function eventData(raw: string): string | null {
  const lines: string[] = [];
  for (const line of raw.split(/\r\n|\n|\r/)) {
    if (line.startsWith('data:')) lines.push(line.slice(line.startsWith('data: ') ? 6 : 5));
  }
  return lines.length ? lines.join('\n') : null;
}
