/**
 * A client that leaves a non-streamed request: its request signal aborts (workerd's `enable_request_signal`), the
 * worker aborts its backend fetch at once (which closes the connection: the backend then cancels the generation),
 * and the request ends as 499
 * with a usage row. Under `wrangler dev` the signal never fires (its dev proxy does not pass a client's disconnect
 * on; see worker/README.md), so this is checked here, by calling the worker's fetch handler with a request whose
 * signal the test aborts.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers/eventually.ts';
import { makeTenant } from './helpers/fixtures.ts';
import { callWith } from './helpers/http.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';
import { usageRowOf } from './helpers/usage.ts';

describe('client abort of a non-streamed request', () => {
  it('aborts the backend request within a moment and records 499', async () => {
    const t = await makeTenant();
    const tag = uniqueTag('client-abort');
    // the backend would keep the request for 60 s (the response deadline) if nobody aborted it
    const vars = {
      BACKENDS: JSON.stringify([{ url: stubBackend('stall', tag), weight: 1 }]),
      BACKEND_RESPONSE_TIMEOUT_MS: '60000',
    };
    const client = new AbortController();
    const answer = callWith(vars, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: t.model, messages: [{ role: 'user', content: 'leave early' }], max_tokens: 50 }),
      signal: client.signal,
    });
    await eventually('the request reached the backend', async () => ((await stubRequests(tag)).length > 0 ? true : null));
    const t0 = Date.now();
    client.abort();
    // the answer comes once the backend fetch was aborted (the stub would hold it until the 60 s deadline)
    const res = await answer;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(res.status).toBe(499);
    // the row is completed once the backend was asked what it generated (this stub never answers that: 5 s)
    const row = await usageRowOf(res.headers.get('x-request-id')!);
    expect(row.status).toBe(499);
  });
});
