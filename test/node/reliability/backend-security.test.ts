/**
 * The backend's security properties over real HTTP (a real server on loopback, tiny model): edge signatures
 * (replay, clock skew both ways, tampering with body, path, query or method, wrong secret, and a forged request that
 * cannot burn a nonce), the constant-time bearer comparison's behaviour, secrets and prompts absent from logs and
 * answers, body limits with and without Content-Length, and keep-alive longer than the edge's connection reuse.
 */
import { createHash } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerMatches, NonceStore } from '../../../gpu-backend/src/server/auth.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { signRequest, type SignatureHeaders } from '../../../shared/src/signing.ts';
import { startTestBackend, TEST_SECRET, TEST_TOKEN } from '../helpers/backend.ts';
import { tinyInra } from '../helpers/engine.ts';
import { errorOf } from '../helpers/http.ts';
import { cleanupTempDirs, testSeed } from '../helpers/models.ts';

const seed = testSeed();
const BODY_LIMIT = 4096;
const MARKER = `SECRET-PROMPT-${seed.toString(36)}`;
const logLines: string[] = [];
let backend: RunningBackend;

beforeAll(async () => {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  backend = await startTestBackend(
    [{ id: 'inra', mode: 'inra', model: tinyInra(seed), default_lambda: 0.5, lambda_range: [-1, 2], max_context: 64 }],
    {
      limits: { max_body_bytes: BODY_LIMIT, max_tokens: 8, default_max_tokens: 2, max_n: 2, max_stop: 4, max_prompt_tokens: 48 },
    },
    logger,
  );
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const body = (prompt = 'hello') => JSON.stringify({ model: 'inra', prompt, max_tokens: 2 });

/** Sends a request with the given signature headers (signed or tampered by the caller). */
function sendSigned(
  headers: SignatureHeaders | Record<string, string>,
  opts: { method?: string; path?: string; body?: string } = {},
): Promise<Response> {
  const method = opts.method ?? 'POST';
  return fetch(backend.url + (opts.path ?? '/v1/completions'), {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: method === 'GET' ? undefined : (opts.body ?? body()),
  });
}

async function sign(
  opts: { secret?: string; method?: string; path?: string; body?: string; now?: number; nonce?: string } = {},
): Promise<SignatureHeaders> {
  return signRequest(
    opts.secret ?? TEST_SECRET,
    { method: opts.method ?? 'POST', path: opts.path ?? '/v1/completions', body: opts.body ?? body() },
    { now: opts.now, nonce: opts.nonce },
  );
}

describe(`backend security (seed ${seed})`, () => {
  it('a signed request is accepted once; the identical request replayed is refused', async () => {
    const headers = await sign();
    expect((await sendSigned(headers)).status).toBe(200);
    const replay = await sendSigned(headers);
    expect(replay.status).toBe(401);
    expect(await errorOf(replay)).toMatchObject({ type: 'authentication_error', code: 'replayed_nonce' });
  });

  it('clock skew: 59 s either way is accepted, 61 s either way is refused', async () => {
    for (const offset of [-59_000, 59_000]) expect((await sendSigned(await sign({ now: Date.now() + offset }))).status).toBe(200);
    for (const offset of [-61_000, 61_000, -3_600_000, 86_400_000]) {
      const res = await sendSigned(await sign({ now: Date.now() + offset }));
      expect(res.status).toBe(401);
      expect(await errorOf(res)).toMatchObject({ code: 'stale_timestamp' });
    }
  });

  it('a signature does not carry over to another body, path, query, method or secret', async () => {
    const cases: [string, Promise<Response>][] = [
      ['body', sign().then((h) => sendSigned(h, { body: body('changed') }))],
      ['path', sign({ path: '/v1/completions' }).then((h) => sendSigned(h, { path: '/v1/chat/completions' }))],
      ['query', sign({ path: '/v1/completions?x=1' }).then((h) => sendSigned(h, { path: '/v1/completions?x=2' }))],
      [
        'method',
        sign({ method: 'POST', path: '/v1/models', body: '' }).then((h) => sendSigned(h, { method: 'GET', path: '/v1/models' })),
      ],
      ['secret', sign({ secret: `${TEST_SECRET}x` }).then((h) => sendSigned(h))],
    ];
    for (const [what, pending] of cases) {
      const res = await pending;
      expect(res.status, what).toBe(401);
      expect(await errorOf(res), what).toMatchObject({ code: 'bad_signature' });
    }
  });

  it('a forged request cannot burn a nonce: the genuine request with that nonce still goes through', async () => {
    const nonce = `nonce-${seed}-forged`;
    const forged = await sign({ secret: 'attacker-guess', nonce });
    expect((await sendSigned(forged)).status).toBe(401);
    expect((await sendSigned(await sign({ nonce }))).status).toBe(200);
  });

  it('half a signature is refused as unsigned, not treated as a bearer request', async () => {
    const h = await sign();
    const res = await sendSigned({ 'x-realign-timestamp': h['x-realign-timestamp'], authorization: `Bearer ${TEST_TOKEN}` });
    expect(res.status).toBe(401);
    expect(await errorOf(res)).toMatchObject({ code: 'missing_signature' });
  });

  it('the nonce store remembers a nonce for its whole window', () => {
    const store = new NonceStore(120_000);
    const t0 = 1_000_000;
    expect(store.accept('n1', t0)).toBe(true);
    expect(store.accept('n1', t0 + 1)).toBe(false);
    expect(store.accept('n1', t0 + 119_000)).toBe(false);
    expect(store.accept('n2', t0 + 119_000)).toBe(true);
  });

  it('bearer tokens are compared over fixed-size digests, every configured token checked', () => {
    const digest = (s: string) => createHash('sha256').update(s).digest();
    const tokens = ['first-token-aaaa', 'second-token-bbbb'].map(digest);
    expect(bearerMatches('first-token-aaaa', tokens)).toBe(true);
    expect(bearerMatches('second-token-bbbb', tokens)).toBe(true);
    for (const wrong of [
      '',
      'f',
      'first-token-aaab',
      'Xirst-token-aaaa',
      'first-token-aaaa ',
      'first-token-aaaaa',
      'second-token-bbbb'.toUpperCase(),
      'ж'.repeat(1000),
    ]) {
      expect(bearerMatches(wrong, tokens), JSON.stringify(wrong)).toBe(false);
    }
    expect(bearerMatches('first-token-aaaa', [])).toBe(false);
  });

  it('secrets and prompt text appear in no log line and in no answer', async () => {
    const wrongToken = `wrong-${TEST_TOKEN}-guess`;
    const answers: string[] = [];
    const keep = async (res: Response) => answers.push(JSON.stringify([...res.headers]) + (await res.text()));
    const h = await sign({ body: body(MARKER) });
    await keep(await sendSigned(h, { body: body(MARKER) }));
    await keep(await sendSigned(h, { body: body(MARKER) })); // replay
    await keep(await sendSigned(await sign({ secret: 'nope', body: body(MARKER) }), { body: body(MARKER) }));
    await keep(
      await fetch(`${backend.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: body(MARKER),
      }),
    );
    await keep(
      await fetch(`${backend.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${wrongToken}` },
        body: body(MARKER),
      }),
    );
    await keep(
      await fetch(`${backend.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: JSON.stringify({ model: 'inra', messages: [{ role: 'user', content: MARKER }], max_tokens: 2, stream: true }),
      }),
    );
    await keep(
      await fetch(`${backend.url}/v1/logits`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        body: JSON.stringify({ model: 'inra', prompt: MARKER }),
      }),
    );
    const logs = logLines.join('\n');
    expect(logs).toMatch(/"msg":"request"/);
    for (const secret of [TEST_TOKEN, TEST_SECRET, wrongToken, h['x-realign-signature'].slice(3), MARKER])
      expect(logs).not.toContain(secret);
    for (const secret of [TEST_TOKEN, TEST_SECRET, wrongToken, h['x-realign-signature'].slice(3)])
      for (const a of answers) expect(a).not.toContain(secret);
  });

  it('body limit: over it with or without Content-Length is a 413 before any generation; at it is read', async () => {
    const over = JSON.stringify({ model: 'inra', prompt: 'x'.repeat(BODY_LIMIT) });
    const declared = await fetch(`${backend.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: over,
    });
    expect(declared.status).toBe(413);
    expect(declared.headers.get('connection')).toBe('close');
    expect(await errorOf(declared)).toMatchObject({ code: 'payload_too_large' });
    const bytes = new TextEncoder().encode(over);
    const chunked = await fetch(`${backend.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      body: new ReadableStream({ start: (c) => (c.enqueue(bytes), c.close()) }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    // exactly at the limit the body is read (and then judged on its content: the prompt is too long for the model)
    const atLimit = JSON.stringify({ model: 'inra', prompt: 'x' }).replace(
      '"x"',
      `"${'x'.repeat(BODY_LIMIT - JSON.stringify({ model: 'inra', prompt: '' }).length)}"`,
    );
    expect(new TextEncoder().encode(atLimit).length).toBe(BODY_LIMIT);
    const at = await fetch(`${backend.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: atLimit,
    });
    expect(at.status).toBe(400);
    expect(await errorOf(at)).not.toMatchObject({ code: 'payload_too_large' });
  });

  it('keeps idle connections open longer than the edge reuses them (Keep-Alive ≥ 60 s)', async () => {
    const res = await fetch(`${backend.url}/healthz`);
    expect(res.headers.get('connection')).toBe('keep-alive');
    expect(Number(/timeout=(\d+)/.exec(res.headers.get('keep-alive') ?? '')?.[1])).toBeGreaterThanOrEqual(60);
  });
});
