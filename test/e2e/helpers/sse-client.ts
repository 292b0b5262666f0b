/** Reading an SSE answer of the edge over plain fetch, event by event, for the fault and load tests. */
import { eventData, SseSplitter } from '../../../shared/src/sse.ts';

/** Everything a streamed answer delivered before it closed. */
export interface StreamRead {
  /** `data` payloads in order, `[DONE]` included as the string */
  data: string[];
  /** parsed error events (`{"error": …}`) */
  errors: { message: string; type: string; code: string | null }[];
  done: boolean;
  /** the body's text after the last complete event ('' when it ended cleanly) */
  rest: string;
}

/** Reads `res`'s SSE body to its end; `onData` sees each payload as it arrives (e.g. to kill a backend mid-stream). */
export async function readStream(res: Response, onData?: (data: string, n: number) => void | Promise<void>): Promise<StreamRead> {
  const out: StreamRead = { data: [], errors: [], done: false, rest: '' };
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const splitter = new SseSplitter();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const raw of splitter.push(value)) {
      const data = eventData(raw);
      if (data === null) continue;
      out.data.push(data);
      if (data === '[DONE]') out.done = true;
      else {
        const parsed = JSON.parse(data) as { error?: StreamRead['errors'][number] };
        if (parsed.error) out.errors.push(parsed.error);
      }
      await onData?.(data, out.data.length);
    }
  }
  out.rest = splitter.rest();
  return out;
}

/** Concatenated `text` / `delta.content` of a stream's chunks. */
export function streamText(read: StreamRead): string {
  return read.data
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as { choices?: { text?: string; delta?: { content?: string } }[] })
    .flatMap((e) => (e.choices ?? []).map((c) => c.text ?? c.delta?.content ?? ''))
    .join('');
}
