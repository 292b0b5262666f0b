import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { call, callWith, postJson } from './helpers/http.ts';

describe('request validation at the edge', () => {
  it('answers malformed JSON, a non-object body, an empty body and invalid UTF-8 with 400s', async () => {
    const t = await makeTenant();
    const send = (body: BodyInit) =>
      call('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
        body,
      });
    const cases: [BodyInit, string][] = [
      ['{"model": ', 'invalid_json'],
      ['[1,2]', 'invalid_body'],
      ['', 'invalid_json'],
      [new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'invalid_encoding'],
    ];
    for (const [body, code] of cases) {
      const res = await send(body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code } });
    }
    expect(
      (await postJson('/v1/chat/completions', t.key, { model: t.model, messages: [{ role: 'user', content: 'still fine' }] }))
        .status,
    ).toBe(200);
  });

  it('names the field and the fix for schema errors', async () => {
    const t = await makeTenant();
    const res = await postJson('/v1/chat/completions', t.key, {
      model: t.model,
      messages: [{ role: 'user', content: 'x' }],
      top_p: 1.5,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        message: '`top_p` must be a number in (0, 1], got 1.5',
        type: 'invalid_request_error',
        param: 'top_p',
        code: 'invalid_value',
      },
    });
  });

  it('refuses a body over the size limit with 413, whether or not Content-Length tells', async () => {
    const t = await makeTenant();
    const big = JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    const vars = { MAX_BODY_BYTES: '4096' };
    const declared = await callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}` },
      body: big,
    });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    const bytes = new TextEncoder().encode(big);
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
        controller.close();
      },
    });
    const streamed = await callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}` },
      body: chunked,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
  });

  it('checks the x-realign-user header', async () => {
    const t = await makeTenant();
    const res = await postJson(
      '/v1/chat/completions',
      t.key,
      { model: t.model, messages: [{ role: 'user', content: 'x' }] },
      { 'x-realign-user': 'two words' },
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { param: 'x-realign-user' } });
  });

  it('answers wrong methods on /v1 routes with a 405 in the error format (api-details.test.ts has more)', async () => {
    const t = await makeTenant();
    const res = await call('/v1/chat/completions', { headers: { authorization: `Bearer ${t.key}` } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
  });
});
