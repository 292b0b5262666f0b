/**
 * The body guard (src/http/body-guard.ts) inside workerd: every answer leaves its request body settled (read or
 * cancelled), a failing body does not fail the answer, and a declared oversized body is refused before reading.
 * The whole edge under `wrangler dev` is checked in test/e2e/usage-endings.test.ts with raw sockets.
 */
import { Hono } from 'hono';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../src/app-env.ts';
import { bodyGuard, settleBody } from '../src/http/body-guard.ts';
import { relayedTokens } from '../src/usage/dispatch-usage.ts';

/** A body that sends `first` and then never ends (or fails, with `fail`), noting whether it was cancelled. */
function endlessBody(first: string, fail = false): { body: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode(first));
        return;
      }
      if (fail) controller.error(new Error('the client went away'));
      return new Promise(() => undefined);
    },
    cancel() {
      cancelled = true;
    },
  });
  return { body, cancelled: () => cancelled };
}

function app(): Hono<AppEnv> {
  const a = new Hono<AppEnv>();
  a.use('*', bodyGuard());
  a.onError((_, c) => c.json({ error: 'failed' }, 500));
  a.post('/early', (c) => c.json({ error: 'unauthorized' }, 401));
  a.post('/read-part', async (c) => {
    const reader = c.req.raw.body!.getReader();
    await reader.read();
    await reader.read().catch(() => undefined);
    throw new Error('read failed');
  });
  a.post('/read', async (c) => c.text(await c.req.text()));
  return a;
}

const request = (path: string, init: RequestInit & { headers?: Record<string, string> }) =>
  new Request(`http://edge${path}`, { duplex: 'half', ...init } as RequestInit);

describe('body guard', () => {
  it('an answer that never read the body cancels it', async () => {
    const { body, cancelled } = endlessBody('{"partial":');
    const res = await app().fetch(request('/early', { method: 'POST', body }), env);
    expect(res.status).toBe(401);
    await res.text();
    expect(cancelled()).toBe(true);
  });

  it('a body that fails while it is read (a truncated body, a hang-up) does not fail the answer again', async () => {
    const { body } = endlessBody('{"a":', true);
    const res = await app().fetch(request('/read-part', { method: 'POST', body }), env);
    expect(res.status).toBe(500);
    await expect(settleBody(request('/x', { method: 'POST', body: endlessBody('x', true).body }))).resolves.toBeUndefined();
  });

  it('a declared body larger than MAX_BODY_BYTES gets 413 without being read', async () => {
    const { body, cancelled } = endlessBody('{"model":');
    const res = await app().fetch(
      request('/read', { method: 'POST', body, headers: { 'content-length': String(Number(env.MAX_BODY_BYTES) * 2) } }),
      env,
    );
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
    expect(cancelled()).toBe(true);
    // a declared size within the limit is read as usual
    const ok = await app().fetch(request('/read', { method: 'POST', body: 'hello', headers: { 'content-length': '5' } }), env);
    expect(await ok.text()).toBe('hello');
  });
});

describe('relayed token count', () => {
  it('counts one token per choice with text, content or log-probabilities; none for role, finish and usage chunks', () => {
    expect(relayedTokens({ choices: [{ index: 0, text: 'a', logprobs: null, finish_reason: null }] })).toBe(1);
    expect(relayedTokens({ choices: [{ index: 0, delta: { content: 'b' }, logprobs: null }] })).toBe(1);
    expect(relayedTokens({ choices: [{ index: 0, delta: { content: '' }, logprobs: { content: [{ token: 'x' }] } }] })).toBe(1);
    expect(relayedTokens({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null }] })).toBe(0);
    expect(relayedTokens({ choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'stop' }] })).toBe(0);
    expect(relayedTokens({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } })).toBe(0);
    expect(relayedTokens(null)).toBe(0);
  });
});
