/**
 * Entry of the tokenizer thread: encodes prompts and renders chat templates away from the server's event loop, so
 * one request's long prompt costs this thread's time, not every other request's latency. It is the one thread of
 * the server that parses tokenizer.json: its ready message carries the token table (text/token-table.ts) that the
 * event loop and the engine thread use instead.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TokenTable } from './token-table.ts';
import type { TokenizeReply, TokenizeRequest, TokenizerFiles, TokenizerReady } from './tokenizer-protocol.ts';
import { TextTokenizer, TokenizerError } from './tokenizer.ts';

const port = parentPort;
if (!port) throw new Error('tokenizer-worker.ts runs as a worker thread');
const files = workerData as TokenizerFiles;
const tokenizer = TextTokenizer.load(files.tokenizerFile, files.tokenizerConfigFile);
const utf8 = new TextEncoder();

function reply(m: TokenizeReply): void {
  if (m.ok) port!.postMessage(m, [m.ids.buffer as ArrayBuffer]);
  else port!.postMessage(m);
}

port.on('message', (req: TokenizeRequest) => {
  let bytes = 0;
  try {
    let text: string;
    if (req.op === 'chat') {
      text = tokenizer.applyChatTemplate(req.messages, req.options);
      bytes = utf8.encode(text).length;
      if (req.maxBytes !== null && bytes > req.maxBytes)
        return reply({ id: req.id, ok: false, kind: 'too_long', message: 'rendered chat over the byte bound', bytes });
      reply({ id: req.id, ok: true, ids: Int32Array.from(tokenizer.encode(text, { addSpecialTokens: false })), bytes });
    } else {
      text = req.text;
      bytes = utf8.encode(text).length;
      reply({
        id: req.id,
        ok: true,
        ids: Int32Array.from(tokenizer.encode(text, { addSpecialTokens: req.addSpecialTokens })),
        bytes,
      });
    }
  } catch (err) {
    reply({
      id: req.id,
      ok: false,
      kind: err instanceof TokenizerError ? 'tokenizer' : 'internal',
      message: (err as Error).message,
      bytes,
    });
  }
});
// the table's arrays are SharedArrayBuffers: the message shares them, it does not copy them
port.postMessage({ ready: true, table: TokenTable.fromTokenizer(tokenizer).data } satisfies TokenizerReady);
