/**
 * Passes a backend's SSE stream to the client event by event, never holding more than one unfinished event.
 * On the way it shows each parsed event to an observer (usage, cache assembly), drops the usage-only chunk (and
 * the other chunks' `usage: null`) when the client did not ask for usage, and turns a broken, stalled or garbled
 * upstream into one OpenAI error event followed by the end of the stream. Reading is pulled by the client, so a slow client slows the backend read
 * and a client that goes away cancels the backend request.
 */
import { badGateway, isErrorBody, type ErrorBody } from '../../../shared/src/errors.ts';
import { eventData, SSE_DONE_DATA, sseErrorEvent, SseSplitter } from '../../../shared/src/sse.ts';
import { IdleTimeoutError, readWithTimeout } from './read-with-timeout.ts';

/** How a relayed stream ended. */
export type RelayOutcome =
  { kind: 'done' } | { kind: 'backend_error'; body: ErrorBody } | { kind: 'broken'; reason: string } | { kind: 'cancelled' };

/** Options of {@link relaySse}. */
export interface RelayOptions {
  idleTimeoutMs: number;
  /** Whether the client asked for `stream_options.include_usage` (else the usage-only chunk and `usage: null` go). */
  keepUsageChunk: boolean;
  /** Sees every JSON event in order (before any is dropped). */
  onEvent?: (event: unknown) => void;
  /** Called once when the stream ends, however it ends. */
  onEnd: (outcome: RelayOutcome) => void;
}

function isUsageOnlyChunk(event: unknown): boolean {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as { choices?: unknown; usage?: unknown };
  return Array.isArray(e.choices) && e.choices.length === 0 && typeof e.usage === 'object' && e.usage !== null;
}

/** A copy of a chunk without its `usage: null`, or null when it has no such field. */
function withoutNullUsage(event: unknown): Record<string, unknown> | null {
  if (typeof event !== 'object' || event === null || !('usage' in event) || event.usage !== null) return null;
  const copy: Record<string, unknown> = { ...event };
  delete copy.usage;
  return copy;
}

/** The client-facing stream for a backend's SSE body. */
export function relaySse(upstream: ReadableStream<Uint8Array>, o: RelayOptions): ReadableStream<Uint8Array> {
  const reader = upstream.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const splitter = new SseSplitter();
  let sawDone = false;
  let ended = false;
  const end = (outcome: RelayOutcome) => {
    if (ended) return;
    ended = true;
    o.onEnd(outcome);
  };
  /** Ends the client stream with one error event; `fromBackend` when the backend itself reported the error. */
  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, body: ErrorBody, fromBackend: boolean) => {
    controller.enqueue(encoder.encode(sseErrorEvent(body)));
    controller.close();
    reader.cancel().catch(() => undefined);
    end(fromBackend ? { kind: 'backend_error', body } : { kind: 'broken', reason: body.error.message });
  };
  const broken = (message: string) => badGateway(message, 'stream_interrupted').toBody();

  /** Turns complete events into client text, stopping at the first error (`fromBackend`: an error event it sent). */
  const translate = (events: string[]): { text: string; error: ErrorBody | null; fromBackend: boolean } => {
    let text = '';
    for (const raw of events) {
      const data = eventData(raw);
      if (data === null) {
        text += raw + '\n\n';
        continue;
      }
      if (data === SSE_DONE_DATA) {
        sawDone = true;
        text += raw + '\n\n';
        continue;
      }
      let event: unknown;
      try {
        event = JSON.parse(data);
      } catch {
        return {
          text,
          error: broken('the backend sent an invalid event; the stream was cut short, retry the request'),
          fromBackend: false,
        };
      }
      if (isErrorBody(event)) return { text, error: event, fromBackend: true };
      o.onEvent?.(event);
      if (!o.keepUsageChunk) {
        if (isUsageOnlyChunk(event)) continue;
        // the edge always asks the backend for usage: chunks of a client that did not ask lose the `usage: null` it
        // adds, as OpenAI sends them without the field
        const chunk = withoutNullUsage(event);
        if (chunk !== null) {
          text += `data: ${JSON.stringify(chunk)}\n\n`;
          continue;
        }
      }
      text += raw + '\n\n';
    }
    return { text, error: null, fromBackend: false };
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await readWithTimeout(reader, o.idleTimeoutMs);
        } catch (e) {
          const why =
            e instanceof IdleTimeoutError ? `the backend stalled for ${e.ms} ms` : 'the connection to the backend broke';
          return fail(controller, broken(`${why}; the stream was cut short, retry the request`), false);
        }
        if (chunk.done) {
          // A last event without its blank line still counts.
          const { text, error, fromBackend } = translate(splitter.push(decoder.decode() + '\n\n').filter((e) => e.trim() !== ''));
          if (text) controller.enqueue(encoder.encode(text));
          if (error) return fail(controller, error, fromBackend);
          if (!sawDone) return fail(controller, broken('the backend ended the stream early; retry the request'), false);
          controller.close();
          return end({ kind: 'done' });
        }
        const { text, error, fromBackend } = translate(splitter.push(decoder.decode(chunk.value, { stream: true })));
        if (text) controller.enqueue(encoder.encode(text));
        if (error) return fail(controller, error, fromBackend);
        if (text) return;
      }
    },
    cancel(reason) {
      end({ kind: 'cancelled' });
      return reader.cancel(reason);
    },
  });
}
