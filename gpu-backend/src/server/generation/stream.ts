/**
 * A streamed answer: the choices' events as server-sent events, in arrival order. A failed choice ends the stream
 * with an error event and cancels the others; a reader that goes away cancels every choice.
 */
import type { Logger } from 'pino';
import { errorBody } from '../../../../shared/src/errors.ts';
import { SSE_DONE, sseErrorEvent } from '../../../../shared/src/sse.ts';
import type { GenerateEvent } from '../../engine/protocol.ts';
import { failureOf, rejectionError } from '../engine-error.ts';
import type { ChunkWriter } from '../wire/completion.ts';
import type { ChoiceRun } from './choices.ts';

/** What {@link streamAnswer} needs besides the run. */
export interface StreamOptions {
  writer: ChunkWriter;
  includeUsage: boolean;
  /** keep the streamed texts for the log (log_prompts) */
  keepTexts: boolean;
  log: Logger;
  model: string;
}

function errorEvent(err: unknown): string {
  const e = rejectionError(err);
  return sseErrorEvent(errorBody(e.message, e.type, null, e.code));
}

/** The response body of a streamed answer; `signal` (the client's request) cancels it. */
export function streamAnswer(run: ChoiceRun, signal: AbortSignal, opts: StreamOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const texts = Array.from({ length: run.choices }, () => '');
  let cancelled = false;
  const cancel = () => {
    cancelled = true;
    run.cancel();
  };
  signal.addEventListener('abort', cancel, { once: true });
  async function relay(send: (s: string) => void): Promise<void> {
    const finals: GenerateEvent[] = [];
    for (const s of opts.writer.opening(run.choices)) send(s);
    for await (const { index, ev } of run.events()) {
      if (cancelled) break;
      if (ev.finish === 'error' || ev.finish === 'cancelled') {
        send(errorEvent(failureOf(ev)));
        cancel();
        break;
      }
      const chunk = opts.writer.tokens(index, ev);
      if (chunk !== null) {
        send(chunk);
        if (opts.keepTexts) texts[index] += ev.text;
      }
      if (ev.finish) {
        finals[index] = ev;
        send(opts.writer.finish(index, ev));
      }
    }
    if (cancelled) return;
    const usage = run.record(finals, texts);
    if (opts.includeUsage) send(opts.writer.usage(usage));
    send(SSE_DONE);
  }
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (s: string) => {
        if (!cancelled) controller.enqueue(encoder.encode(s));
      };
      try {
        await relay(send);
      } catch (err) {
        send(errorEvent(err));
      } finally {
        if (cancelled) opts.log.info({ model: opts.model }, 'client went away; generation cancelled');
        try {
          controller.close();
        } catch {
          // already closed by a cancelled reader
        }
      }
    },
    cancel,
  });
}
