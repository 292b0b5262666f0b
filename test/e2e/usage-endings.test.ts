/**
 * Every way a request can end leaves exact usage, through the whole real system (`realign serve` behind
 * `wrangler dev`, local D1), and no request can take the edge down:
 *   - truncated bodies and hang-ups never kill `wrangler dev`; an oversized declared body is refused before reading;
 *   - a streamed client that hangs up at a random step: its usage row has the backend's token count;
 *   - a non-streamed client that hangs up: the row has the backend's count;
 *   - a backend killed mid-stream: the row has the tokens relayed so far;
 *   - the edge itself killed with requests in flight: every one has a row, and once a new edge runs, the rows hold
 *     the backends' counts.
 * The backend's own count of a request is the change of its `realign_completion_tokens_total` counter while that
 * request alone ran. The model is the bigram checkpoint (test/node/helpers/bigram.ts): greedy, one character per token.
 */
import { join } from 'node:path';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSystem, wranglerDevArgs, type RunningSystem } from '../../scripts/lib/system.ts';
import { freePort, start, waitReady, type Proc } from '../../scripts/lib/procs.ts';
import { bigramModel } from '../node/helpers/bigram.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../node/helpers/models.ts';
import { metric, scrapeMetrics } from './helpers/backend-probe.ts';

const seed = testSeed();
const TEXT = 'Count me!';
const MAX_TOKENS = 1800;
let sys: RunningSystem;
let stateDir: string;
let edgeUrl: string;
let edge: Proc;
const tenant = `usage-${seed}`;

function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${edgeUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${sys.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A fresh key of the test tenant, so that one key's usage is one request's (or one group's). */
async function newKey(): Promise<{ id: string; key: string }> {
  const res = await admin('POST', `/admin/tenants/${tenant}/keys`, { name: 'k' });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

function post(key: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${edgeUrl}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bigram', temperature: 0, ...body }),
    signal,
  });
}

type Line = {
  requests: number;
  failed_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  aligned_completion_tokens: number;
};

async function usageOf(keyId: string): Promise<Line | null> {
  const res = await admin('GET', `/admin/usage?tenant=${tenant}&key=${keyId}&group_by=key`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Line[] }).data[0] ?? null;
}

/** Completion tokens the live backends have generated so far (all requests, all branches). */
async function backendTokens(): Promise<number> {
  let total = 0;
  for (const [i, url] of sys.backendUrls.entries()) {
    if (sys.backends[i].child.exitCode !== null || sys.backends[i].child.signalCode !== null) continue;
    total += metric(await scrapeMetrics(url, sys.hmacSecret), 'realign_completion_tokens_total', { model: 'bigram' });
  }
  return total;
}

/** Sequences running or waiting on the live backends. */
async function backendsBusy(): Promise<number> {
  let busy = 0;
  for (const [i, url] of sys.backendUrls.entries()) {
    if (sys.backends[i].child.exitCode !== null || sys.backends[i].child.signalCode !== null) continue;
    const m = await scrapeMetrics(url, sys.hmacSecret);
    busy += metric(m, 'realign_running_sequences', { model: 'bigram' }) + metric(m, 'realign_queue_depth', { model: 'bigram' });
  }
  return busy;
}

/** Waits until no sequence runs or waits on any live backend. */
async function backendsIdle(): Promise<void> {
  await expect.poll(backendsBusy, { timeout: 20_000, interval: 100 }).toBe(0);
}

/** Reads a streamed answer until `n` events with text arrived; returns how many it read (the caller then hangs up). */
async function readTextEvents(res: Response, n: number): Promise<number> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let seen = 0;
  while (seen < n) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split('\n\n');
    buffer = events.pop()!;
    for (const e of events) if (/"text":"[^"]/.test(e) && seen < n) seen++;
  }
  return seen;
}

/** Sends raw bytes to the edge and closes the socket after `holdMs` (no answer is awaited). */
function rawHangUp(bytes: string, holdMs = 500): Promise<string> {
  const { port } = new URL(edgeUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(bytes);
      setTimeout(() => socket.destroy(), holdMs);
    });
    let got = '';
    socket.on('data', (d) => (got += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
  });
}

/** Starts `wrangler dev` again on the state of the killed one (same D1, same backends). */
async function restartEdge(): Promise<void> {
  const port = await freePort();
  const vars = { BACKENDS: JSON.stringify(sys.backendUrls.map((url, i) => ({ url, weight: i === 0 ? 1000 : 1 }))) };
  edge = start(
    'wrangler dev (restarted)',
    process.execPath,
    wranglerDevArgs({
      port,
      inspectorPort: await freePort(),
      persist: join(stateDir, 'wrangler-state'),
      envFile: join(stateDir, 'worker.env'),
      vars,
    }),
    { cwd: join(import.meta.dirname, '../..'), env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  edgeUrl = `http://127.0.0.1:${port}`;
  await waitReady(`${edgeUrl}/healthz`, 120_000, edge);
}

beforeAll(async () => {
  const bigram = bigramModel(TEXT);
  const models = [{ id: 'bigram', mode: 'single', model: bigram.dir, device: 'cpu', threads: 1 }];
  stateDir = join(tempDir('realign-e2e-usage-'), 'state');
  sys = await startSystem({
    stateDir,
    backends: [
      { models, weight: 1000 },
      { models, weight: 1 },
    ],
    models: [{ id: 'bigram', defaultLambda: 1 }],
  });
  edgeUrl = sys.edgeUrl;
  edge = sys.worker;
  expect(
    (
      await admin('POST', '/admin/tenants', {
        id: tenant,
        name: tenant,
        requests_per_minute: 100_000,
        tokens_per_minute: 100_000_000,
        cache_ttl_seconds: 0,
      })
    ).status,
  ).toBe(201);
  expect((await admin('PUT', `/admin/tenants/${tenant}/models/bigram`, {})).status).toBeLessThan(300);
}, 300_000);
afterAll(async () => {
  await Promise.all([sys?.stop(), edge?.stop()]);
  cleanupTempDirs();
}, 60_000);

describe(`usage on every ending, through the edge (seed ${seed})`, () => {
  // The client hangs up 500 ms after its partial body, once the edge could answer. A client that hangs up while the
  // edge still waits for the rest of a body it declared makes wrangler's own dev proxy (ProxyWorker, in front of the
  // worker) fail its fetch and wrangler dev exit, whatever the worker does; see worker/README.md.
  it('truncated bodies and hang-ups do not take the edge down; an oversized declared body gets 413 before it is sent', async () => {
    const { key } = await newKey();
    const short = '{"model":"bigram","prompt":"x"';
    await rawHangUp(`GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc`);
    await rawHangUp(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n${short}`,
    );
    await rawHangUp(
      `POST /admin/tenants HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"id"`,
    );
    await rawHangUp(`POST /nowhere HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\nab`);
    await rawHangUp(`PUT /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\nab`);
    // a body declared far past MAX_BODY_BYTES: refused without reading it
    const t0 = Date.now();
    const answer = await rawHangUp(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n\r\n{"model":`,
      3000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(Date.now() - t0).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(edge.child.exitCode, edge.output().slice(-2000)).toBeNull();
    expect((await fetch(`${edgeUrl}/healthz`, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
    const ok = await post(key, { prompt: 'hi', max_tokens: 4 });
    expect(ok.status).toBe(200);
    expect(edge.output()).not.toMatch(/Failed to drain/);
  });

  it('a stream whose client hangs up at a random step: the row has the backend’s count for it', async () => {
    // the steps come from the seed (REALIGN_TEST_SEED replays a run)
    let state = seed >>> 0 || 1;
    const random = () => (state = (Math.imul(state, 48271) >>> 0) % 2147483647 || 1) / 2147483647;
    for (let trial = 0; trial < 4; trial++) {
      const step = 1 + Math.floor(random() * 40);
      const { id, key } = await newKey();
      await backendsIdle();
      const before = await backendTokens();
      const ac = new AbortController();
      const res = await post(key, { prompt: `trial ${trial}`, max_tokens: MAX_TOKENS, stream: true }, ac.signal);
      expect(res.status).toBe(200);
      const seen = await readTextEvents(res, step);
      ac.abort();
      await backendsIdle();
      const generated = (await backendTokens()) - before;
      console.log(`[usage hang-up] trial ${trial}: hung up after ${seen} text events, backend generated ${generated}`);
      expect(seen).toBe(step);
      expect(generated).toBeGreaterThanOrEqual(step);
      expect(generated).toBeLessThan(MAX_TOKENS);
      await expect.poll(async () => (await usageOf(id))?.completion_tokens, { timeout: 15_000 }).toBe(generated);
      const line = (await usageOf(id))!;
      expect(line.requests).toBe(1);
      expect(line.prompt_tokens).toBeGreaterThan(0);
      expect(line.aligned_completion_tokens).toBe(generated);
    }
  });

  // Under `wrangler dev` the worker is never told that a non-streamed client left (wrangler's dev proxy neither aborts
  // the worker's request nor its signal), so here the backend may run to the end; the row must hold its count either
  // way. That the worker aborts its backend request when the client's signal fires is worker/test/client-abort.test.ts.
  it('a non-streamed client that hangs up: the row has the backend’s count', async () => {
    const { id, key } = await newKey();
    await backendsIdle();
    const before = await backendTokens();
    const ac = new AbortController();
    const sent = post(key, { prompt: 'not streamed', max_tokens: MAX_TOKENS }, ac.signal).catch((e: unknown) => e);
    // hang up once a backend runs it (a fixed 400 ms outlasted the whole 1,800-token generation on a quiet machine)
    await expect.poll(backendsBusy, { timeout: 20_000, interval: 5 }).toBeGreaterThan(0);
    ac.abort();
    expect(await sent).toBeInstanceOf(Error);
    await backendsIdle();
    const generated = (await backendTokens()) - before;
    console.log(`[usage hang-up] non-streamed: backend generated ${generated} of max_tokens ${MAX_TOKENS}`);
    expect(generated).toBeGreaterThan(0);
    await expect.poll(async () => (await usageOf(id))?.completion_tokens, { timeout: 15_000 }).toBe(generated);
    expect((await usageOf(id))!.requests).toBe(1);
  });

  it('the edge killed with requests in flight: every request has a row, and a new edge fills in the backends’ counts', async () => {
    const { id, key } = await newKey();
    await backendsIdle();
    const before = await backendTokens();
    const streams = Array.from({ length: 6 }, async (_, i) => {
      const res = await post(key, { prompt: `edge death ${i}`, max_tokens: MAX_TOKENS, stream: true });
      await readTextEvents(res, 3);
      return res;
    });
    const plain = Array.from({ length: 3 }, (_, i) =>
      post(key, { prompt: `edge death plain ${i}`, max_tokens: MAX_TOKENS }).catch((e: unknown) => e),
    );
    await Promise.all(streams);
    // the in-flight rows come through the usage queue, which wrangler dev keeps in memory (a deployed queue keeps a
    // message once send() resolved): wait until its consumer wrote them (a batch timeout, 1 s), then kill the edge
    await expect.poll(async () => (await usageOf(id))?.requests, { timeout: 15_000, interval: 100 }).toBe(9);
    await edge.stop('SIGKILL');
    await Promise.allSettled(plain);
    await backendsIdle();
    const generated = (await backendTokens()) - before;
    await restartEdge();
    const { key: other } = await newKey();
    // any later generation request lets the new edge settle rows left in flight (after a short grace period)
    await expect
      .poll(
        async () => {
          await post(other, { prompt: 'nudge', max_tokens: 1 }).then((r) => r.text());
          return usageOf(id);
        },
        { timeout: 60_000, interval: 2000 },
      )
      .toMatchObject({ requests: 9, completion_tokens: generated });
    console.log(
      `[usage edge death] 9 requests in flight when the edge died; backends generated ${generated}; rows sum ${generated}`,
    );
  });

  it('a backend killed mid-stream: the row has the tokens relayed so far', async () => {
    const { id, key } = await newKey();
    await backendsIdle();
    const res = await post(key, { prompt: 'killed', max_tokens: MAX_TOKENS, stream: true });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    let events = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
      const n = text.split('\n\n').filter((e) => /"text":"[^"]/.test(e)).length;
      if (events < 5 && n >= 5) {
        for (const [i, url] of sys.backendUrls.entries()) {
          if (metric(await scrapeMetrics(url, sys.hmacSecret), 'realign_running_sequences', { model: 'bigram' }) > 0)
            await sys.backends[i].stop('SIGKILL');
        }
      }
      events = n;
    }
    expect(text).toMatch(/stream_interrupted/);
    console.log(`[usage backend kill] ${events} text events relayed before the backend died`);
    await expect.poll(async () => (await usageOf(id))?.completion_tokens, { timeout: 15_000 }).toBe(events);
    expect((await usageOf(id))!).toMatchObject({ requests: 1, failed_requests: 1 });
  });
});
