/**
 * Malformed HTTP at the backend and credentials checked before the body: each broken request gets OpenAI's error
 * JSON with the status that says what is wrong (405 CONNECT, 400 no Host, 417 an unknown expectation, 400 a chunk
 * size that overflows, 413 a declared body over the limit), promptly, on a connection the client keeps open; an
 * unauthenticated request is refused before its body is read (even one that never sends the body it declares);
 * a signed request's body read is bounded in time; a model the backend does not serve is named alone in the 404.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { signRequest } from '../../../shared/src/signing.ts';
import { parseResponses } from '../../fuzz/raw-http.ts';
import { startTestBackend, TEST_SECRET, TEST_TOKEN } from '../helpers/backend.ts';
import { bigramModel } from '../helpers/bigram.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs } from '../helpers/models.ts';
import { connect } from 'node:net';

const BODY_TIMEOUT_MS = 1_000;
let backend: RunningBackend;

beforeAll(async () => {
  backend = await startTestBackend([{ id: 'bigram', mode: 'single', model: bigramModel('malformed').dir }], {
    limits: { body_timeout_ms: BODY_TIMEOUT_MS },
  });
}, 120_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

/**
 * Writes `bytes` and keeps the connection open (no half-close): what the server sends within `waitMs`, and whether
 * it closed the connection itself.
 */
function exchange(bytes: string, waitMs = 3_000): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(backend.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: performance.now() - started });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('connect', () => socket.write(Buffer.from(bytes, 'latin1')));
  });
}

/** The one answer of an exchange, checked to be OpenAI's error JSON. */
function errorAnswer(out: { text: string }): { status: number; code: string | null; type: string } {
  const responses = parseResponses(out.text);
  expect(responses.length, out.text.slice(0, 300)).toBeGreaterThanOrEqual(1);
  const r = responses[0];
  expect(r.contentType, out.text.slice(0, 300)).toMatch(/^application\/json/);
  const body = JSON.parse(r.body) as { error: { message: string; type: string; param: unknown; code: string | null } };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return { status: r.status, code: body.error.code, type: body.error.type };
}

const AUTH = `Authorization: Bearer ${TEST_TOKEN}`;

describe('malformed HTTP at the backend', () => {
  it('CONNECT gets a 405 with the error JSON, not a dropped connection', async () => {
    const out = await exchange('CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n');
    expect(errorAnswer(out)).toMatchObject({ status: 405, code: 'method_not_allowed' });
    expect(out.closed).toBe(true);
  });

  it('an HTTP/1.1 request without Host gets a 400 with the error JSON', async () => {
    const out = await exchange(`GET /v1/models HTTP/1.1\r\n${AUTH}\r\n\r\n`);
    expect(errorAnswer(out)).toMatchObject({ status: 400, code: 'missing_host' });
  });

  it('an expectation other than 100-continue gets a 417 with the error JSON', async () => {
    const out = await exchange(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expect(errorAnswer(out)).toMatchObject({ status: 417, code: 'expectation_failed' });
  });

  it('100-continue with a declared body over the limit is refused with a 413 before the body is sent', async () => {
    const out = await exchange(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n`,
    );
    expect(out.text).not.toMatch(/^HTTP\/1.1 100/);
    expect(errorAnswer(out)).toMatchObject({ status: 413, code: 'payload_too_large' });
  });

  it('a chunk size of 2⁶⁴−1 (ffffffffffffffff) whose data never comes: an error JSON and a closed connection within the body timeout', async () => {
    const out = await exchange(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n`,
      5_000,
    );
    // the parser takes the size (it fits in 64 bits); the body read's time bound ends the wait
    expect([400, 408, 413]).toContain(errorAnswer(out).status);
    expect(out.closed).toBe(true);
    expect(out.ms).toBeLessThan(BODY_TIMEOUT_MS + 1_500);
  });

  it('an unauthenticated request that declares a body it never sends is refused at once (401), not left waiting', async () => {
    for (const auth of ['', 'Authorization: Bearer wrong-token\r\n']) {
      const out = await exchange(
        `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        3_000,
      );
      expect(errorAnswer(out), auth).toMatchObject({ status: 401, type: 'authentication_error' });
      expect(out.ms, auth).toBeLessThan(1_500);
      expect(out.closed, auth).toBe(true);
    }
  });

  it('a signed request with a malformed or stale signature is refused before its body is read', async () => {
    const stale = await signRequest(
      TEST_SECRET,
      { method: 'POST', path: '/v1/completions', body: 'x'.repeat(1000) },
      { now: Date.now() - 3_600_000 },
    );
    const heads = [
      'x-realign-timestamp: soon\r\nx-realign-nonce: abcdefgh12\r\nx-realign-signature: v1=zz\r\n',
      Object.entries(stale)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join(''),
    ];
    for (const h of heads) {
      const out = await exchange(`POST /v1/completions HTTP/1.1\r\nHost: x\r\n${h}Content-Length: 1000\r\n\r\n`, 3_000);
      expect(errorAnswer(out)).toMatchObject({ status: 401, type: 'authentication_error' });
      expect(out.ms).toBeLessThan(1_500);
    }
  });

  it('a well-signed request whose body never arrives gets a 408 within the body timeout', async () => {
    const body = JSON.stringify({ model: 'bigram', prompt: 'x' });
    const h = await signRequest(TEST_SECRET, { method: 'POST', path: '/v1/completions', body });
    const head = Object.entries(h)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const out = await exchange(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\n${head}Content-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
      5_000,
    );
    expect(errorAnswer(out)).toMatchObject({ status: 408, code: 'request_timeout' });
    expect(out.closed).toBe(true);
    expect(out.ms).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
    expect(out.ms).toBeLessThan(BODY_TIMEOUT_MS + 1_500);
  });

  it('a model the backend does not serve: the 404 names the requested model only', async () => {
    const res = await send(backend.url, '/v1/completions', { model: 'someone-elses-model', prompt: 'x' });
    expect(res.status).toBe(404);
    const err = await errorOf(res);
    expect(err).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(err.message).toContain('someone-elses-model');
    expect(err.message).not.toContain('bigram');
  });
});
