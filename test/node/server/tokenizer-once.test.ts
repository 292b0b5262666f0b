/**
 * Issue 16 item 7: a served model's tokenizer.json is parsed once, by its tokenizer thread. The server's event loop
 * (token texts of logprobs, the chat-template flag, the prompt byte bound) and the engine thread (streamed text,
 * stop strings, eos ids) use the token table that thread built. Checked here by watching the event loop's
 * TextTokenizer.load, and by overwriting tokenizer.json with text that is not JSON as soon as the tokenizer thread
 * has loaded it — before the engine starts — so an engine thread that parsed it would fail to load the model.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { TokenizerThread } from '../../../gpu-backend/src/text/tokenizer-thread.ts';
import { TextTokenizer } from '../../../gpu-backend/src/text/tokenizer.ts';
import { startTestBackend } from '../helpers/backend.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { send, sseData } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';

// multi-byte characters whose byte-level tokens are distinct (as in test/node/engine/text.test.ts)
const TEXT = '世界🙂ж✓ŋ';
let bigram: ReturnType<typeof bigramModel>;
let backend: RunningBackend;
let loads: MockInstance;
let threadsStarted = 0;

beforeAll(async () => {
  bigram = bigramModel(TEXT);
  loads = vi.spyOn(TextTokenizer, 'load');
  const start = TokenizerThread.start;
  vi.spyOn(TokenizerThread, 'start').mockImplementation(async (files) => {
    const thread = await start.call(TokenizerThread, files);
    threadsStarted++;
    writeFileSync(files.tokenizerFile, 'this is not the tokenizer any more');
    return thread;
  });
  backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigram.dir }]);
}, 120_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await backend?.stop();
  cleanupTempDirs();
});

describe('the tokenizer is parsed once per model, on its tokenizer thread', () => {
  it('the event loop never loads it and the engine loads the model without reading it', () => {
    expect(threadsStarted).toBe(1);
    expect(loads).not.toHaveBeenCalled();
    expect(backend.registry.status()).toEqual({ bigram: 'ready' });
  });

  it('a streamed completion stops at a stop string spanning tokens; its logprobs name the tokens', async () => {
    const res = await send(backend.url, '/v1/completions', {
      model: 'bigram',
      prompt: 'x',
      max_tokens: 40,
      temperature: 0,
      stream: true,
      stop: ['🙂ж'],
      logprobs: 1,
    });
    expect(res.status).toBe(200);
    let text = '';
    const tokens: string[] = [];
    let finish: string | null = null;
    for await (const data of sseData(res)) {
      if (data === '[DONE]') break;
      const choice = JSON.parse(data).choices[0];
      text += choice.text;
      tokens.push(...(choice.logprobs?.tokens ?? []));
      finish = choice.finish_reason ?? finish;
    }
    expect(text).toBe('世界');
    expect(finish).toBe('stop');
    // the stop string's tokens were generated too: more tokens than those of '世界'
    const before = bigram.tokenizer.encode('世界', { addSpecialTokens: false }).length;
    expect(tokens.length).toBeGreaterThan(before);
    expect(tokens).toEqual(bigram.cycle.slice(0, tokens.length).map((id) => bigram.tokenizer.tokenString(id)));
  });

  it('a chat answer (the template flag from the table) carries token texts and bytes', async () => {
    const res = await send(backend.url, '/v1/chat/completions', {
      model: 'bigram',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { message: { content: string }; logprobs: { content: { token: string; bytes: number[] }[] } }[];
    };
    const ids = bigram.cycle.slice(0, 5);
    expect(body.choices[0].message.content).toBe(bigram.tokenizer.decode(ids));
    expect(body.choices[0].logprobs.content.map((t) => t.token)).toEqual(ids.map((id) => bigram.tokenizer.tokenString(id)));
    expect(body.choices[0].logprobs.content.map((t) => t.bytes)).toEqual(ids.map((id) => bigram.tokenizer.tokenBytes(id)));
  });
});
