/**
 * Calls to the realign API with the page's key, OpenAI error messages, and an SSE reader over fetch
 * (EventSource cannot POST or send an Authorization header).
 */
import { state } from './state.ts';

export const KEY_STORAGE = 'realign.playground.apiKey';

/** Calls the API on this origin with the key; JSON bodies are serialised here. */
export function api(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<Response> {
  const headers: Record<string, string> = { authorization: 'Bearer ' + state.key };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: init.signal,
  });
}

/** The message of an error answer ({error: {message}} when the API sent one), with the status. */
export async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: unknown } } | null;
    if (body && body.error && typeof body.error.message === 'string') return res.status + ': ' + body.error.message;
  } catch {
    // not JSON: fall back to the status line
  }
  return res.status + ' ' + res.statusText;
}

/** GETs JSON, throwing an Error with the API's message on a non-2xx answer. */
export async function getJson<T>(path: string): Promise<T> {
  const res = await api(path);
  if (!res.ok) throw new Error(await errorMessage(res));
  return (await res.json()) as T;
}

const EVENT_END = /\r\n\r\n|\n\n|\r\r/;

/**
 * Reads a text/event-stream body, calling onData with each data: payload parsed as JSON, until [DONE] (then
 * returns true) or the end of the body (returns false: the stream broke off).
 */
export async function readSse(res: Response, onData: (chunk: unknown) => void): Promise<boolean> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) return false;
      buffer += next.value;
      let end: RegExpExecArray | null;
      while ((end = EVENT_END.exec(buffer)) !== null) {
        const block = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        const data = block
          .split(/\r\n|\n|\r/)
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
          .join('\n');
        if (data === '') continue;
        if (data === '[DONE]') return true;
        onData(JSON.parse(data));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
