/**
 * Bad input through real HTTP (fetch to a listening server): each case gets its exact status and an OpenAI error
 * body whose message names the field, and the server answers the next valid request exactly as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { signRequest } from '../../../shared/src/signing.ts';
import { startTestBackend, TEST_SECRET, TEST_TOKEN } from '../helpers/backend.ts';
import { tinyInra, tinyModel } from '../helpers/engine.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
const CONTEXT = 128;
const LIMITS = {
  max_body_bytes: 16 * 1024,
  max_tokens: 512,
  default_max_tokens: 16,
  max_n: 4,
  max_stop: 4,
  max_prompt_tokens: 100,
};
let backend: RunningBackend;
let base: string;

beforeAll(async () => {
  backend = await startTestBackend(
    [
      { id: 'inra', mode: 'inra', model: tinyInra(seed), default_lambda: 0.5, lambda_range: [-1, 2], max_context: CONTEXT },
      { id: 'plain', mode: 'single', model: tinyModel(seed + 7) },
    ],
    { limits: LIMITS },
  );
  base = backend.url;
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const completion = (extra: Record<string, unknown>) => ({ model: 'inra', prompt: 'hello there', max_tokens: 4, ...extra });
const chat = (extra: Record<string, unknown>) => ({
  model: 'inra',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 4,
  ...extra,
});
const post =
  (path: string, body: unknown, opts: Parameters<typeof send>[3] = {}) =>
  () =>
    send(base, path, body, opts);
const postCompletion = (extra: Record<string, unknown>) => post('/v1/completions', completion(extra));

/** A signed request whose headers the case may tamper with. */
async function signed(
  path: string,
  body: string,
  opts: { secret?: string; now?: number; nonce?: string } = {},
): Promise<Response> {
  const headers = await signRequest(
    opts.secret ?? TEST_SECRET,
    { method: 'POST', path, body },
    { now: opts.now, nonce: opts.nonce },
  );
  return fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

/** A request body streamed in chunks, so the client sends no content-length. */
function chunkedBody(total: number): ReadableStream<Uint8Array> {
  const chunk = new TextEncoder().encode('x'.repeat(1024));
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

interface Case {
  name: string;
  request: () => Promise<Response>;
  status: number;
  type: string;
  /** the `param` the error must name (null when no single field is at fault) */
  param: string | null;
  code?: string;
  /** what the message must say (the field, or what was wrong with the body) */
  message: RegExp;
  /** response headers the case must carry */
  headers?: Record<string, string>;
  /** a step before the request (e.g. the first, accepted use of a nonce) */
  before?: () => Promise<void>;
}

const invalid = 'invalid_request_error';
const REPLAYED = `nonce-${seed}-replayed`;
const replayBody = JSON.stringify(completion({}));

const CASES: Case[] = [
  // the body itself
  {
    name: 'malformed JSON',
    request: post('/v1/completions', '{"model": "inra", "prompt": '),
    status: 400,
    type: invalid,
    param: null,
    code: 'invalid_json',
    message: /not valid JSON/,
  },
  {
    name: 'a JSON array instead of an object',
    request: post('/v1/completions', '[1, 2]'),
    status: 400,
    type: invalid,
    param: null,
    code: 'invalid_body',
    message: /JSON object, got an array/,
  },
  {
    name: 'λ as the raw token NaN (invalid JSON)',
    request: post('/v1/completions', '{"model": "inra", "prompt": "hi", "lambda": NaN}'),
    status: 400,
    type: invalid,
    param: null,
    code: 'invalid_json',
    message: /not valid JSON/,
  },
  {
    name: 'invalid UTF-8 in the body',
    request: () =>
      fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: new Uint8Array([...new TextEncoder().encode('{"model": "inra", "prompt": "'), 0xff, 0xfe, 0x22, 0x7d]),
      }),
    status: 400,
    type: invalid,
    param: null,
    code: 'invalid_encoding',
    message: /not valid UTF-8/,
  },
  {
    name: 'oversized body with content-length',
    request: post('/v1/completions', completion({ prompt: 'x'.repeat(LIMITS.max_body_bytes) })),
    status: 413,
    type: invalid,
    param: null,
    code: 'payload_too_large',
    message: /larger than the limit of 16384 bytes/,
    headers: { connection: 'close' },
  },
  {
    name: 'oversized chunked body without content-length',
    request: () =>
      fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: chunkedBody(LIMITS.max_body_bytes * 4),
        duplex: 'half',
      } as RequestInit),
    status: 413,
    type: invalid,
    param: null,
    code: 'payload_too_large',
    message: /larger than the limit of 16384 bytes/,
    headers: { connection: 'close' },
  },
  // wrong types
  {
    name: 'max_tokens as a string',
    request: postCompletion({ max_tokens: '10' }),
    status: 400,
    type: invalid,
    param: 'max_tokens',
    message: /`max_tokens` must be an integer ≥ 1, got string "10"/,
  },
  {
    name: 'messages as a string',
    request: post('/v1/chat/completions', chat({ messages: 'hi' })),
    status: 400,
    type: invalid,
    param: 'messages',
    message: /`messages` must be an array/,
  },
  {
    name: 'stream as a string',
    request: postCompletion({ stream: 'yes' }),
    status: 400,
    type: invalid,
    param: 'stream',
    message: /`stream` must be true or false/,
  },
  {
    name: 'a message with an unknown role',
    request: post('/v1/chat/completions', chat({ messages: [{ role: 'tool', content: 'x' }] })),
    status: 400,
    type: invalid,
    param: 'messages[0].role',
    message: /`messages\[0\]\.role` must be one of/,
  },
  {
    name: 'missing model',
    request: post('/v1/completions', { prompt: 'hi' }),
    status: 400,
    type: invalid,
    param: 'model',
    message: /`model` is required/,
  },
  // λ
  {
    name: 'λ as the string "Infinity"',
    request: postCompletion({ lambda: 'Infinity' }),
    status: 400,
    type: invalid,
    param: 'lambda',
    message: /`lambda` must be a finite number \(λ\), got string "Infinity"/,
  },
  {
    name: 'λ as the string "0.5"',
    request: postCompletion({ lambda: '0.5' }),
    status: 400,
    type: invalid,
    param: 'lambda',
    message: /`lambda` must be a finite number \(λ\), got string "0\.5"/,
  },
  {
    name: 'λ as 1e999 (parses to Infinity)',
    request: post('/v1/completions', '{"model": "inra", "prompt": "hi", "lambda": 1e999}'),
    status: 400,
    type: invalid,
    param: 'lambda',
    message: /`lambda` must be a finite number/,
  },
  {
    name: 'λ above the model range',
    request: postCompletion({ lambda: 2.5 }),
    status: 400,
    type: invalid,
    param: 'lambda',
    code: 'lambda_out_of_range',
    message: /`lambda` must be in \[-1, 2\] for model "inra", got 2\.5/,
  },
  {
    name: 'λ below the model range (chat)',
    request: post('/v1/chat/completions', chat({ lambda: -3 })),
    status: 400,
    type: invalid,
    param: 'lambda',
    code: 'lambda_out_of_range',
    message: /`lambda` must be in \[-1, 2\]/,
  },
  {
    name: '`control` out of range',
    request: postCompletion({ control: 7 }),
    status: 400,
    type: invalid,
    param: 'control',
    code: 'lambda_out_of_range',
    message: /`control` must be in \[-1, 2\]/,
  },
  {
    name: '`control` and `lambda` disagree',
    request: postCompletion({ lambda: 0.5, control: 1 }),
    status: 400,
    type: invalid,
    param: 'control',
    message: /`control` is an alias of `lambda`/,
  },
  {
    name: 'λ on a single-checkpoint model',
    request: post('/v1/completions', { model: 'plain', prompt: 'hi', lambda: 0.3 }),
    status: 400,
    type: invalid,
    param: 'lambda',
    code: 'lambda_not_supported',
    message: /single checkpoint and has no λ; remove `lambda`/,
  },
  // what to generate
  {
    name: 'unknown model',
    request: postCompletion({ model: 'nope' }),
    status: 404,
    type: 'not_found_error',
    param: 'model',
    code: 'model_not_found',
    message: /^model "nope" is not served by this backend; check the model id$/,
  },
  {
    name: 'empty messages',
    request: post('/v1/chat/completions', chat({ messages: [] })),
    status: 400,
    type: invalid,
    param: 'messages',
    message: /`messages` must contain at least one message/,
  },
  {
    name: 'empty prompt',
    request: postCompletion({ prompt: '' }),
    status: 400,
    type: invalid,
    param: 'prompt',
    message: /`prompt` must not be empty/,
  },
  {
    name: 'prompt token id outside the vocabulary',
    request: postCompletion({ prompt: [5, 99999] }),
    status: 400,
    type: invalid,
    param: 'prompt[1]',
    code: 'invalid_token_id',
    message: /`prompt\[1\]` is token id 99999/,
  },
  {
    name: 'prompt longer than the server allows',
    request: postCompletion({ prompt: Array.from({ length: 110 }, (_, i) => 10 + i) }),
    status: 400,
    type: invalid,
    param: 'prompt',
    code: 'context_length_exceeded',
    message: /`prompt` has 110 tokens; this server accepts at most 100/,
  },
  {
    name: 'max_tokens over the server limit',
    request: postCompletion({ max_tokens: 100_000 }),
    status: 400,
    type: invalid,
    param: 'max_tokens',
    code: 'max_tokens_too_large',
    message: /`max_tokens` must be at most 512, got 100000/,
  },
  {
    name: 'max_tokens over the context',
    request: postCompletion({ max_tokens: 500 }),
    status: 400,
    type: invalid,
    param: 'max_tokens',
    code: 'context_length_exceeded',
    message: /`max_tokens` is 500 but the prompt already has \d+ of the model's 128 tokens of context; lower max_tokens to \d+/,
  },
  // sampling
  {
    name: 'negative temperature',
    request: postCompletion({ temperature: -0.5 }),
    status: 400,
    type: invalid,
    param: 'temperature',
    message: /`temperature` must be a number in \[0, 2\], got -0\.5/,
  },
  {
    name: 'top_p 0',
    request: postCompletion({ top_p: 0 }),
    status: 400,
    type: invalid,
    param: 'top_p',
    message: /`top_p` must be a number in \(0, 1\], got 0/,
  },
  {
    name: 'top_p above 1',
    request: postCompletion({ top_p: 1.5 }),
    status: 400,
    type: invalid,
    param: 'top_p',
    message: /`top_p` must be a number in \(0, 1\], got 1\.5/,
  },
  {
    name: 'n over the server limit',
    request: postCompletion({ n: 5 }),
    status: 400,
    type: invalid,
    param: 'n',
    code: 'n_too_large',
    message: /`n` must be at most 4, got 5/,
  },
  {
    name: 'n over the wire limit',
    request: postCompletion({ n: 1000 }),
    status: 400,
    type: invalid,
    param: 'n',
    message: /`n` must be an integer in \[1, 128\], got 1000/,
  },
  {
    name: 'too many stop strings',
    request: postCompletion({ stop: ['a', 'b', 'c', 'd', 'e'] }),
    status: 400,
    type: invalid,
    param: 'stop',
    code: 'too_many_stops',
    message: /`stop` may hold at most 4 strings, got 5/,
  },
  {
    name: 'logit_bias with an out-of-vocabulary id',
    request: postCompletion({ logit_bias: { '4': 1, '70000': -5 } }),
    status: 400,
    type: invalid,
    param: 'logit_bias',
    code: 'invalid_token_id',
    message: /`logit_bias` names token id 70000/,
  },
  // stop_token_ids out of the vocabulary are accepted and ignored (they can never be generated): api-details.test.ts
  {
    name: 'stream_options without stream',
    request: postCompletion({ stream_options: { include_usage: true } }),
    status: 400,
    type: invalid,
    param: 'stream_options',
    message: /`stream_options` is only allowed when `stream` is true/,
  },
  {
    name: 'unsupported field tools',
    request: post('/v1/chat/completions', chat({ tools: [{ type: 'function', function: { name: 'f' } }] })),
    status: 400,
    type: invalid,
    param: 'tools',
    code: 'unsupported_parameter',
    message: /`tools` realign generates text only; remove `tools`/,
  },
  // logits
  {
    name: 'logits with two inputs',
    request: post('/v1/logits', { model: 'inra', prompt: 'a b', input_ids: [1, 2] }),
    status: 400,
    type: invalid,
    param: 'input_ids',
    code: 'invalid_input',
    message: /exactly one of `prompt`, `messages` or `input_ids` \(got `prompt` and `input_ids`\)/,
  },
  {
    name: 'logits with too many lambdas',
    request: post('/v1/logits', { model: 'inra', prompt: 'a b', lambdas: Array.from({ length: 33 }, () => 0.5) }),
    status: 400,
    type: invalid,
    param: 'lambdas',
    message: /`lambdas` must contain at most 32 λ values, got 33/,
  },
  {
    name: 'logits with a λ out of range',
    request: post('/v1/logits', { model: 'inra', prompt: 'a b', lambdas: [0, 9] }),
    status: 400,
    type: invalid,
    param: 'lambdas[1]',
    code: 'lambda_out_of_range',
    message: /`lambdas\[1\]` must be in \[-1, 2\]/,
  },
  {
    name: 'logits with a single `lambda` out of range',
    request: post('/v1/logits', { model: 'inra', prompt: 'a b', lambda: -4 }),
    status: 400,
    type: invalid,
    param: 'lambda',
    code: 'lambda_out_of_range',
    message: /`lambda` must be in \[-1, 2\] for model "inra", got -4/,
  },
  {
    name: 'logits with input_ids outside the vocabulary',
    request: post('/v1/logits', { model: 'inra', input_ids: [1, 100000] }),
    status: 400,
    type: invalid,
    param: 'input_ids[1]',
    code: 'invalid_token_id',
    message: /`input_ids\[1\]` is 100000/,
  },
  // credentials
  {
    name: 'missing credentials',
    request: post('/v1/completions', completion({}), { auth: 'none' }),
    status: 401,
    type: 'authentication_error',
    param: null,
    code: 'missing_credentials',
    message: /missing credentials: send "Authorization: Bearer/,
  },
  {
    name: 'wrong bearer token',
    request: post('/v1/completions', completion({}), { auth: 'none', headers: { authorization: 'Bearer not-the-token' } }),
    status: 401,
    type: 'authentication_error',
    param: null,
    code: 'invalid_api_key',
    message: /invalid bearer token/,
  },
  {
    name: 'bad signature',
    request: () => signed('/v1/completions', JSON.stringify(completion({})), { secret: 'another-secret-entirely' }),
    status: 401,
    type: 'authentication_error',
    param: null,
    code: 'bad_signature',
    message: /signature does not match/,
  },
  {
    name: 'stale timestamp',
    request: () => signed('/v1/completions', JSON.stringify(completion({})), { now: Date.now() - 120_000 }),
    status: 401,
    type: 'authentication_error',
    param: null,
    code: 'stale_timestamp',
    message: /timestamp is 12\d s away from the server's clock \(at most 60 s allowed\)/,
  },
  {
    name: 'replayed nonce (the first use is accepted)',
    before: async () => {
      const first = await signed('/v1/completions', replayBody, { nonce: REPLAYED });
      expect(first.status).toBe(200);
      await first.json();
    },
    request: () => signed('/v1/completions', replayBody, { nonce: REPLAYED }),
    status: 401,
    type: 'authentication_error',
    param: null,
    code: 'replayed_nonce',
    message: /this nonce was already used/,
  },
  // routes
  {
    name: 'unknown route',
    request: post('/v1/embeddings', { model: 'inra', input: 'x' }),
    status: 404,
    type: 'not_found_error',
    param: null,
    code: 'unknown_route',
    message: /no route POST \/v1\/embeddings/,
  },
  {
    name: 'wrong method on a known route',
    request: () => send(base, '/v1/chat/completions', undefined, { method: 'GET' }),
    status: 405,
    type: invalid,
    param: null,
    code: 'method_not_allowed',
    message: /GET is not allowed on \/v1\/chat\/completions; use POST/,
    headers: { allow: 'POST' },
  },
];

/** A valid request and its greedy answer before any bad input. */
const VALID = completion({ prompt: 'The same words every time', max_tokens: 6, temperature: 0 });
let baseline: { text: string; usage: unknown };

async function validAnswer(): Promise<{ text: string; usage: unknown }> {
  const res = await send(base, '/v1/completions', VALID);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string }[]; usage: unknown };
  return { text: body.choices[0].text, usage: body.usage };
}

describe(`bad input through HTTP (seed ${seed})`, () => {
  it('the table has at least 25 distinct cases', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(25);
  });

  it('a valid request works before any bad input', async () => {
    baseline = await validAnswer();
    expect(baseline.text.length).toBeGreaterThan(0);
  });

  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s → its error, then the next valid request is answered as before',
    async (_name, c) => {
      await c.before?.();
      const res = await c.request();
      const err = await errorOf(res);
      expect({ status: res.status, type: err.type, param: err.param }).toEqual({
        status: c.status,
        type: c.type,
        param: c.param,
      });
      if (c.code) expect(err.code).toBe(c.code);
      expect(err.message).toMatch(c.message);
      if (c.param !== null) expect(err.message).toContain(c.param);
      for (const [name, value] of Object.entries(c.headers ?? {})) expect(res.headers.get(name)).toBe(value);
      expect(await validAnswer()).toEqual(baseline);
    },
  );

  it('no rejected request left rows, reservations or queue entries behind', async () => {
    for (const m of backend.registry.models()) {
      const s = await m.engine.refreshStats();
      expect({
        model: m.config.id,
        running: s.running,
        queued: s.queued,
        rows: s.rows,
        kv: s.kvTokensUsed,
        reserved: s.kvTokensReserved,
      }).toEqual({ model: m.config.id, running: 0, queued: 0, rows: 0, kv: 0, reserved: 0 });
    }
  });
});
