/**
 * Fault injection through the real edge (`wrangler dev` with a local D1) for the two faults a real backend cannot
 * be made to produce on cue: a backend that stalls and one that answers garbage. The backend here is a STAND-IN
 * (test/e2e/helpers/fault-server.ts: a real HTTP server whose failure mode the test switches). The worker's
 * timeouts are set short (1.5 s for headers and stream silence, 2.5 s for a whole JSON answer) so that each fault
 * resolves quickly; every request must end cleanly, in an OpenAI error (or an SSE error event), never a hang.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, type RunningSystem } from '../../scripts/lib/system.ts';
import { cleanupTempDirs, tempDir } from '../node/helpers/models.ts';
import { startFaultServer, type FaultMode, type FaultServer } from './helpers/fault-server.ts';
import { readStream } from './helpers/sse-client.ts';

const HEADERS_MS = 1500;
const RESPONSE_MS = 2500;
const IDLE_MS = 1500;
/** No faulted request may take longer than this (the timeouts above plus slack for a loaded machine). */
const BOUND_MS = 20_000;
let sys: RunningSystem;
let fault: FaultServer;

beforeAll(async () => {
  fault = await startFaultServer('stall');
  sys = await startSystem({
    stateDir: join(tempDir('realign-e2e-standins-'), 'state'),
    backends: [],
    models: [{ id: 'standin', defaultLambda: 1 }],
    workerVars: {
      BACKENDS: JSON.stringify([{ url: fault.url, weight: 1 }]),
      BACKEND_TIMEOUT_MS: String(HEADERS_MS),
      BACKEND_RESPONSE_TIMEOUT_MS: String(RESPONSE_MS),
      STREAM_IDLE_TIMEOUT_MS: String(IDLE_MS),
    },
  });
}, 300_000);
afterAll(async () => {
  await sys?.stop();
  await fault?.close();
  cleanupTempDirs();
}, 60_000);

/** A completions request through the edge in `mode`; resolves with the response and how long it took. */
async function ask(mode: FaultMode, stream: boolean): Promise<{ res: Response; ms: number }> {
  fault.mode = mode;
  const started = Date.now();
  const res = await fetch(`${sys.edgeUrl}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'standin', prompt: 'hello', max_tokens: 4, stream }),
    signal: AbortSignal.timeout(BOUND_MS),
  });
  return { res, ms: Date.now() - started };
}

async function errorOf(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { message: string; type: string; param: null; code: string } };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

describe('a backend that stalls (stand-in)', () => {
  it('before its headers: a streamed request fails with 504 after the header deadline, and the worker lets go of it', async () => {
    const abandoned = fault.abandoned;
    const { res, ms } = await ask('stall', true);
    expect(res.status).toBe(504);
    expect(await errorOf(res)).toMatchObject({
      type: 'backend_error',
      code: 'backend_timeout',
      message: expect.stringContaining(`within ${HEADERS_MS} ms`),
    });
    expect(ms).toBeGreaterThanOrEqual(HEADERS_MS);
    // the worker closed its connection to the stalled backend instead of leaving it open
    await expect.poll(() => fault.abandoned, { timeout: 10_000 }).toBeGreaterThan(abandoned);
  });

  it('before its JSON answer: a non-streamed request fails with 504 after the response deadline', async () => {
    const { res, ms } = await ask('stall', false);
    expect(res.status).toBe(504);
    expect(await errorOf(res)).toMatchObject({
      code: 'backend_timeout',
      message: expect.stringContaining(`within ${RESPONSE_MS} ms`),
    });
    expect(ms).toBeGreaterThanOrEqual(RESPONSE_MS);
  });

  it('mid-stream: the client keeps what arrived, then gets one error event and a closed stream', async () => {
    const { res } = await ask('stall-stream', true);
    expect(res.status).toBe(200);
    const read = await readStream(res);
    expect(read.data).toHaveLength(2);
    expect(JSON.parse(read.data[0]!)).toMatchObject({ choices: [{ text: 'first words' }] });
    expect(read.errors).toEqual([
      expect.objectContaining({
        type: 'backend_error',
        code: 'stream_interrupted',
        message: expect.stringContaining(`stalled for ${IDLE_MS} ms`),
      }),
    ]);
    expect(read.done).toBe(false);
    expect(read.rest).toBe('');
  });
});

describe('a backend that answers garbage (stand-in)', () => {
  it('HTML instead of a completion: 502 with a message, streamed or not', async () => {
    for (const stream of [false, true]) {
      const { res } = await ask('garbage', stream);
      expect(res.status).toBe(502);
      expect(await errorOf(res)).toMatchObject({
        type: 'backend_error',
        code: 'bad_backend_response',
        message: expect.stringMatching(/not a completions response/),
      });
    }
  });

  it('a 500 with an HTML body: 502 with a message', async () => {
    const { res } = await ask('garbage-500', false);
    expect(res.status).toBe(502);
    expect(await errorOf(res)).toMatchObject({
      type: 'backend_error',
      code: 'backend_error',
      message: expect.stringMatching(/status 500/),
    });
  });

  it('an event that is not JSON mid-stream: one error event, then the stream closes', async () => {
    const { res } = await ask('garbage-stream', true);
    expect(res.status).toBe(200);
    const read = await readStream(res);
    expect(read.errors).toEqual([
      expect.objectContaining({ code: 'stream_interrupted', message: expect.stringMatching(/invalid event/) }),
    ]);
    expect(read.done).toBe(false);
    expect(read.rest).toBe('');
  });

  it('the edge is still healthy after all of it, and serves the playground with its security headers', async () => {
    expect((await fetch(`${sys.edgeUrl}/healthz`)).status).toBe(200);
    const page = await fetch(`${sys.edgeUrl}/playground`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    await page.text();
  });
});
