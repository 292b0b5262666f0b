import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { parseJsonText, parseRequest, type RequestKind } from './parse-request.ts';

const chat = (extra: Record<string, unknown>) => ({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });
const comp = (extra: Record<string, unknown>) => ({ model: 'm', prompt: 'hi', ...extra });

function expectError(kind: RequestKind, body: unknown, param: string | null, fragment: string | RegExp) {
  const r = parseRequest(kind, body);
  expect(r).toBeInstanceOf(ApiError);
  const e = r as ApiError;
  expect(e.status).toBe(400);
  expect(e.type).toBe('invalid_request_error');
  expect(e.param).toBe(param);
  if (typeof fragment === 'string') expect(e.message).toContain(fragment);
  else expect(e.message).toMatch(fragment);
}

describe('parseRequest: bad input names the field and what to change', () => {
  const cases: Array<[string, RequestKind, unknown, string | null, string | RegExp]> = [
    ['top_p above 1', 'chat', chat({ top_p: 1.5 }), 'top_p', '`top_p` must be a number in (0, 1], got 1.5'],
    ['top_p of 0', 'chat', chat({ top_p: 0 }), 'top_p', 'in (0, 1], got 0'],
    [
      'negative temperature',
      'chat',
      chat({ temperature: -0.1 }),
      'temperature',
      '`temperature` must be a number in [0, 2], got -0.1',
    ],
    ['λ as a string', 'chat', chat({ lambda: '0.5' }), 'lambda', '`lambda` must be a finite number (λ), got string "0.5"'],
    ['λ as "Infinity"', 'chat', chat({ lambda: 'Infinity' }), 'lambda', 'got string "Infinity"'],
    ['λ as NaN (a JS caller)', 'chat', chat({ lambda: NaN }), 'lambda', 'got NaN'],
    ['λ as Infinity (a JS caller)', 'completions', comp({ lambda: Infinity }), 'lambda', 'got Infinity'],
    ['control as a string', 'chat', chat({ control: 'high' }), 'control', '`control` must be a finite number'],
    ['lambda and control disagree', 'chat', chat({ lambda: 0.5, control: 0.7 }), 'control', 'alias of `lambda`'],
    ['missing model', 'chat', { messages: [{ role: 'user', content: 'x' }] }, 'model', '`model` is required'],
    ['empty messages', 'chat', chat({ messages: [] }), 'messages', 'at least one message'],
    ['missing messages', 'chat', { model: 'm' }, 'messages', '`messages` is required'],
    ['tool role', 'chat', chat({ messages: [{ role: 'tool', content: 'x' }] }), 'messages[0].role', 'tools are not supported'],
    [
      'image part',
      'chat',
      chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }),
      'messages[0].content[0].type',
      'only "text" parts',
    ],
    ['content a number', 'chat', chat({ messages: [{ role: 'user', content: 5 }] }), 'messages[0].content', 'got 5'],
    ['n not an integer', 'chat', chat({ n: 1.5 }), 'n', '`n` must be an integer in [1, 128], got 1.5'],
    ['n of 0', 'completions', comp({ n: 0 }), 'n', 'got 0'],
    ['max_tokens of 0', 'completions', comp({ max_tokens: 0 }), 'max_tokens', '`max_tokens` must be an integer ≥ 1, got 0'],
    ['max_tokens as a string', 'chat', chat({ max_tokens: '10' }), 'max_tokens', 'got string "10"'],
    [
      'conflicting max_completion_tokens',
      'chat',
      chat({ max_tokens: 5, max_completion_tokens: 6 }),
      'max_completion_tokens',
      'alias of `max_tokens`',
    ],
    ['stop list too long', 'chat', chat({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), 'stop', 'at most 16'],
    ['empty stop string', 'chat', chat({ stop: ['a', ''] }), 'stop[1]', 'must not be empty'],
    ['stop a number', 'completions', comp({ stop: 3 }), 'stop', 'string or an array of strings'],
    ['logit_bias key not a token id', 'chat', chat({ logit_bias: { abc: 1 } }), 'logit_bias', 'decimal strings'],
    ['logit_bias value out of range', 'chat', chat({ logit_bias: { '42': 101 } }), 'logit_bias["42"]', 'in [-100, 100], got 101'],
    [
      'stream_options without stream',
      'chat',
      chat({ stream_options: { include_usage: true } }),
      'stream_options',
      'only allowed when `stream` is true',
    ],
    ['stream as a string', 'chat', chat({ stream: 'yes' }), 'stream', 'true or false'],
    ['top_logprobs without logprobs', 'chat', chat({ top_logprobs: 3 }), 'top_logprobs', 'requires `logprobs: true`'],
    ['top_logprobs too large', 'chat', chat({ logprobs: true, top_logprobs: 21 }), 'top_logprobs', 'in [0, 20]'],
    ['completions logprobs boolean', 'completions', comp({ logprobs: true }), 'logprobs', 'got boolean true'],
    ['presence_penalty beyond 2', 'chat', chat({ presence_penalty: 2.5 }), 'presence_penalty', 'in [-2, 2]'],
    ['top_k below -1', 'chat', chat({ top_k: -2 }), 'top_k', 'integer ≥ -1'],
    ['min_p above 1', 'chat', chat({ min_p: 1.2 }), 'min_p', 'in [0, 1]'],
    ['repetition_penalty 0', 'chat', chat({ repetition_penalty: 0 }), 'repetition_penalty', 'in [0.01, 100]'],
    [
      'repetition_penalty 1e-300 (overflows a logit)',
      'chat',
      chat({ repetition_penalty: 1e-300 }),
      'repetition_penalty',
      '`repetition_penalty` must be a number in [0.01, 100], got 1e-300',
    ],
    ['negative stop_token_ids', 'completions', comp({ stop_token_ids: [-1] }), 'stop_token_ids[0]', 'integer ≥ 0'],
    ['seed not an integer', 'chat', chat({ seed: 1.5 }), 'seed', 'must be an integer'],
    ['preset with spaces', 'chat', chat({ preset: 'very deep' }), 'preset', '1–64 letters'],
    ['empty prompt', 'completions', comp({ prompt: '' }), 'prompt', 'must not be empty'],
    ['mixed prompt batch', 'completions', comp({ prompt: ['a', 3] }), 'prompt[1]', 'like the other prompts'],
    ['negative token id prompt', 'completions', comp({ prompt: [1, -2] }), 'prompt[1]', 'non-negative integer token id'],
    ['tools refused', 'chat', chat({ tools: [{ type: 'function' }] }), 'tools', 'generates text only'],
    [
      'json response_format refused',
      'chat',
      chat({ response_format: { type: 'json_object' } }),
      'response_format',
      'supports only {"type": "text"}',
    ],
    ['body an array', 'chat', [1, 2], null, 'must be a JSON object, got an array'],
    ['body a string', 'completions', 'hello', null, 'got string "hello"'],
    ['logits with two inputs', 'logits', { model: 'm', prompt: 'a', input_ids: [1] }, 'input_ids', 'exactly one of'],
    ['logits without input', 'logits', { model: 'm' }, 'prompt', 'got none'],
    ['logits λ not finite', 'logits', { model: 'm', prompt: 'a', lambdas: [0, 'x'] }, 'lambdas[1]', 'finite number'],
    ['logits empty lambdas', 'logits', { model: 'm', prompt: 'a', lambdas: [] }, 'lambdas', 'at least one'],
    ['logits bad positions', 'logits', { model: 'm', prompt: 'a', positions: 'first' }, 'positions', 'must be "last" or "all"'],
    ['logits lambda and lambdas', 'logits', { model: 'm', prompt: 'a', lambda: 0.5, lambdas: [1] }, 'lambda', 'not both'],
    ['logits top_logprobs 0', 'logits', { model: 'm', prompt: 'a', top_logprobs: 0 }, 'top_logprobs', 'in [1, 100]'],
  ];
  it.each(cases)('%s', (_name, kind, body, param, fragment) => expectError(kind, body, param, fragment));
});

describe('parseRequest: normalization', () => {
  it('folds control into lambda, stop into a list, text parts into a string, developer into system', () => {
    const r = parseRequest(
      'chat',
      chat({
        control: -0.5,
        stop: 'END',
        messages: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
            ],
          },
        ],
      }),
    );
    expect(r).not.toBeInstanceOf(ApiError);
    const req = r as Exclude<typeof r, ApiError>;
    expect(req.lambda).toBe(-0.5);
    expect('control' in req).toBe(false);
    expect(req.stop).toEqual(['END']);
    expect(req.stream).toBe(false);
    expect(req.messages).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'a\nb' },
    ]);
  });

  it('reads max_completion_tokens as max_tokens, treats null as unset and drops unknown fields', () => {
    const r = parseRequest('chat', chat({ max_completion_tokens: 7, temperature: null, parallel_tool_calls: false, lambda: 0 }));
    expect(r).toEqual({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 7, stream: false, lambda: 0 });
  });

  it('accepts equal lambda and control, token-id prompts and prompt batches', () => {
    expect(parseRequest('chat', chat({ lambda: 2, control: 2 }))).toMatchObject({ lambda: 2 });
    expect(parseRequest('completions', comp({ prompt: [1, 2, 3] }))).toMatchObject({ prompt: [1, 2, 3] });
    expect(parseRequest('completions', comp({ prompt: [[1], [2, 3]] }))).toMatchObject({ prompt: [[1], [2, 3]] });
    expect(
      parseRequest('completions', comp({ prompt: ['a', 'b'], stream: true, stream_options: { include_usage: true } })),
    ).toMatchObject({
      prompt: ['a', 'b'],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('fills logits defaults', () => {
    expect(parseRequest('logits', { model: 'm', input_ids: [5, 6], lambdas: [0, 0.5, 1] })).toEqual({
      model: 'm',
      input_ids: [5, 6],
      lambdas: [0, 0.5, 1],
      positions: 'last',
      top_logprobs: 20,
      include_branches: false,
      add_generation_prompt: true,
      continue_final_message: false,
    });
  });

  it('continues a final assistant message only when asked, and only one that exists', () => {
    const messages = [
      { role: 'user', content: '1+1' },
      { role: 'assistant', content: '1+1=2 sum' },
    ];
    expect(parseRequest('logits', { model: 'm', messages, continue_final_message: true })).toMatchObject({
      continue_final_message: true,
      add_generation_prompt: false,
    });
    const refused: [Record<string, unknown>, string][] = [
      [{ model: 'm', prompt: 'a', continue_final_message: true }, 'continue_final_message'],
      [{ model: 'm', messages: messages.slice(0, 1), continue_final_message: true }, 'messages'],
      [{ model: 'm', messages, continue_final_message: true, add_generation_prompt: true }, 'add_generation_prompt'],
    ];
    for (const [body, param] of refused) {
      const r = parseRequest('logits', body);
      expect(r, JSON.stringify(body)).toBeInstanceOf(ApiError);
      expect((r as ApiError).status).toBe(400);
      expect((r as ApiError).param).toBe(param);
    }
  });

  it('reads a single logits `lambda` (or `control`) as `lambdas`', () => {
    expect(parseRequest('logits', { model: 'm', prompt: 'a', control: 0.25 })).toMatchObject({ lambdas: [0.25] });
    expect(parseRequest('logits', { model: 'm', prompt: 'a', lambda: 0.25 })).not.toHaveProperty('lambda');
  });

  it('reports malformed JSON as a 400 with code invalid_json', () => {
    const r = parseJsonText('{"model": ');
    expect(r).toBeInstanceOf(ApiError);
    expect((r as ApiError).status).toBe(400);
    expect((r as ApiError).code).toBe('invalid_json');
    expect(parseRequest('chat', r)).toBe(r);
    expect(parseJsonText('{"a":1}')).toEqual({ a: 1 });
  });
});
