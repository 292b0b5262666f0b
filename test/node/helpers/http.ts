/** Plain HTTP helpers for the server tests: requests with chosen credentials, error-body checks, SSE reading. */
import { expect } from 'vitest';
import { signRequest } from '../../../shared/src/signing.ts';
import { eventData, SseSplitter } from '../../../shared/src/sse.ts';
import { TEST_SECRET, TEST_TOKEN } from './backend.ts';

/** How a request authenticates: the test bearer token, an edge signature, or nothing. */
export type Credentials = 'bearer' | 'hmac' | 'none';

/** Sends a request to `base + path`; a string or object body is sent as JSON text. */
export async function send(
  base: string,
  path: string,
  body?: unknown,
  opts: { method?: string; auth?: Credentials; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  const method = opts.method ?? (body === undefined ? 'GET' : 'POST');
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  const auth = opts.auth ?? 'bearer';
  if (auth === 'bearer') headers.authorization = `Bearer ${TEST_TOKEN}`;
  if (auth === 'hmac') Object.assign(headers, await signRequest(TEST_SECRET, { method, path, body: text ?? '' }));
  return fetch(base + path, { method, headers, body: text, signal: opts.signal });
}

/** The error body of a response, checked to be exactly OpenAI's shape. */
export async function errorOf(
  res: Response,
): Promise<{ message: string; type: string; param: string | null; code: string | null }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(10);
  expect(typeof body.error.type).toBe('string');
  return body.error;
}

/** Reads SSE `data` payloads from a response body as they arrive. */
export async function* sseData(res: Response): AsyncGenerator<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const splitter = new SseSplitter();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      for (const raw of splitter.push(value)) {
        const data = eventData(raw);
        if (data !== null) yield data;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
