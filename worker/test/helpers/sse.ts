/** Reading SSE responses in tests with the shared splitter. */
import { eventData, SseSplitter } from '../../../shared/src/sse.ts';

/** All `data` payloads of a finished SSE body, `[DONE]` included as the string. */
export async function readSse(res: Response): Promise<string[]> {
  const splitter = new SseSplitter();
  const text = await res.text();
  const events = splitter.push(text);
  if (splitter.rest().trim() !== '')
    throw new Error(`SSE body ends with an unfinished event: ${JSON.stringify(splitter.rest())}`);
  return events.map(eventData).filter((d): d is string => d !== null);
}

/** Concatenated chat `delta.content` (or completion `text`) of parsed events. */
export function streamedText(data: string[]): string {
  return data
    .filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d) as { choices: { delta?: { content?: string }; text?: string }[] })
    .flatMap((e) => e.choices.map((c) => c.delta?.content ?? c.text ?? ''))
    .join('');
}
