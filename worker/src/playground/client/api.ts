/**
 * Browser code (as text, served in app.js): calls to the realign API with the page's key, OpenAI error messages,
 * and an SSE reader over fetch (EventSource cannot POST or send an Authorization header).
 */
export const API_JS = String.raw`
const KEY_STORAGE = 'realign.playground.apiKey';

/** Calls the API on this origin with the key; JSON bodies are serialised here. */
function api(path, init) {
  const opts = init || {};
  const headers = { authorization: 'Bearer ' + state.key };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, { method: opts.method || 'GET', headers: headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal });
}

/** The message of an error answer ({error: {message}} when the API sent one), with the status. */
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') return res.status + ': ' + body.error.message;
  } catch (ignored) {
    // not JSON: fall back to the status line
  }
  return res.status + ' ' + res.statusText;
}

/** GETs JSON, throwing an Error with the API's message on a non-2xx answer. */
async function getJson(path) {
  const res = await api(path);
  if (!res.ok) throw new Error(await errorMessage(res));
  return res.json();
}

const EVENT_END = /\r\n\r\n|\n\n|\r\r/;

/**
 * Reads a text/event-stream body, calling onData with each data: payload parsed as JSON, until [DONE] (then
 * returns true) or the end of the body (returns false: the stream broke off).
 */
async function readSse(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) return false;
      buffer += next.value;
      let end;
      while ((end = EVENT_END.exec(buffer)) !== null) {
        const block = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        const data = block.split(/\r\n|\n|\r/).filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n');
        if (data === '') continue;
        if (data === '[DONE]') return true;
        onData(JSON.parse(data));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
`;
