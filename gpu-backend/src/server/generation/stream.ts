/**
 * A streamed answer: the choices' events as server-sent events, in arrival order. A failed choice ends the stream
 * with an error event: from the failure on no other choice's tokens are relayed, the others are cancelled, and the
 * error event goes out once the engine ended them (so the ledger is final when the reader sees the error; see
 * server/generation/choices.ts). A reader that goes away cancels every choice.
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

/**
 * Relays the choices' events until every choice ended, the reader went away (`stopped`) or one choice failed:
 * the final events, and the failure (null when none) — a failed choice's error, or the engine's failing under the
 * request. Nothing is relayed after a failure.
 */
async function relayEvents(
  run: ChoiceRun,
  opts: StreamOptions,
  texts: string[],
  send: (s: string) => void,
  stopped: () => boolean,
): Promise<{ finals: GenerateEvent[]; failure: unknown }> {
  const finals: GenerateEvent[] = [];
  try {
    for await (const { index, ev } of run.events()) {
      if (stopped()) break;
      if (ev.finish === 'error' || ev.finish === 'cancelled') return { finals, failure: failureOf(ev) };
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
  } catch (err) {
    return { finals, failure: err }; // the engine failed under the request
  }
  return { finals, failure: null };
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
    for (const s of opts.writer.opening(run.choices)) send(s);
    const { finals, failure } = await relayEvents(run, opts, texts, send, () => cancelled);
    if (failure !== null) {
      // the other choices are stopped and have ended before the error event goes out (see the top of this file)
      await run.stop();
      send(errorEvent(failure));
      return;
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
        send(errorEvent(err)); // a bug in relaying (the writer): the reader still learns the stream failed
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
