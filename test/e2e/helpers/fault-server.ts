/**
 * A STAND-IN for a misbehaving GPU backend, for the fault-injection tests: a real HTTP server on loopback whose
 * failure mode the test switches. A real `realign serve` cannot be made to stall on cue or to answer garbage, so
 * these two faults use this server; every other fault in test/e2e uses real backend processes. It answers
 * `/readyz` at once in every mode (a backend that is up but fails on generation) and does not check signatures.
 *
 * Modes: `stall` (reads the request, never answers), `stall-stream` (SSE headers and one valid chunk, then
 * silence), `garbage` (200 with an HTML body), `garbage-stream` (SSE headers, then an event that is not JSON),
 * `garbage-500` (500 with an HTML body).
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the stand-in answers generation requests. */
export type FaultMode = 'stall' | 'stall-stream' | 'garbage' | 'garbage-stream' | 'garbage-500';

/** A running stand-in. */
export interface FaultServer {
  url: string;
  mode: FaultMode;
  /** generation requests received */
  requests: number;
  /** requests whose connection the client closed before this server finished answering */
  abandoned: number;
  close(): Promise<void>;
}

const chunk = {
  id: 'cmpl-standin',
  object: 'text_completion',
  created: 1_800_000_000,
  model: 'standin',
  lambda: 1,
  choices: [{ index: 0, text: 'first words', logprobs: null, finish_reason: null }],
};

/** Starts the stand-in on a free loopback port in `mode`. */
export async function startFaultServer(mode: FaultMode): Promise<FaultServer> {
  const open = new Set<ServerResponse>();
  const state: FaultServer = { url: '', mode, requests: 0, abandoned: 0, close: async () => undefined };
  const server = createServer((req, res) => {
    req.resume();
    if (req.url?.endsWith('/readyz')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"ready":true}');
    }
    state.requests++;
    open.add(res);
    res.on('close', () => {
      open.delete(res);
      if (!res.writableFinished) state.abandoned++;
    });
    switch (state.mode) {
      case 'stall':
        return;
      case 'stall-stream':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end('<html><body>502 upstream says hi</body></html>');
      case 'garbage-stream':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return void res.end(`data: ${JSON.stringify(chunk)}\n\ndata: <html>not json</html>\n\n`);
      case 'garbage-500':
        res.writeHead(500, { 'content-type': 'text/html' });
        return void res.end('<html>oops</html>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const res of open) res.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return state;
}
