/**
 * Fuzzing below fetch: raw HTTP/1.1 requests over a TCP socket, mutated in their framing (request line, header
 * lines, Content-Length against the real body, chunked encoding, stray bytes), which a fetch client can never send.
 * Node only (node:net).
 */
import fc from 'fast-check';
import { connect } from 'node:net';

/** How the raw request is broken. */
export type RawMutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; delta: number }
  | { kind: 'double-length'; second: number }
  | { kind: 'chunked'; chunk: string }
  | { kind: 'request-line'; line: string }
  | { kind: 'header'; line: string }
  | { kind: 'bare-lf' }
  | { kind: 'pipelined' }
  | { kind: 'no-host' };

/** One raw mutation. */
export function rawMutation(): fc.Arbitrary<RawMutation> {
  const frac = fc.double({ min: 0, max: 1, noNaN: true });
  return fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('flip' as const), at: frac, byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: frac }),
    fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -20, max: 20 }) }),
    fc.record({ kind: fc.constant('double-length' as const), second: fc.integer({ min: 0, max: 100 }) }),
    fc.record({
      kind: fc.constant('chunked' as const),
      chunk: fc.constantFrom(
        '5\r\nhello\r\n0\r\n\r\n',
        'zz\r\nx\r\n0\r\n\r\n',
        'ffffffffffffffff\r\n',
        '3\r\nabcdef\r\n0\r\n\r\n',
        '0\r\n',
        '1;ext=x\r\n{\r\n0\r\n\r\n',
      ),
    }),
    fc.record({
      kind: fc.constant('request-line' as const),
      line: fc.constantFrom(
        'POST /v1/completions HTTP/1.0',
        'POST /v1/completions HTTP/2.0',
        'POST  /v1/completions HTTP/1.1',
        'P@ST /v1/completions HTTP/1.1',
        'POST /v1/completions',
        'POST http://evil/v1/completions HTTP/1.1',
        'POST * HTTP/1.1',
        'POST /v1/completions\u0000 HTTP/1.1',
        'GET /%ff%fe HTTP/1.1',
        'CONNECT 127.0.0.1:1 HTTP/1.1',
      ),
    }),
    fc.record({
      kind: fc.constant('header' as const),
      line: fc.constantFrom(
        'X-Bad Header: 1',
        'Content-Type: application/json\r\nContent-Type: text/plain',
        ': empty-name',
        'X-Long: ' + 'a'.repeat(20_000),
        'Transfer-Encoding: gzip',
        'Transfer-Encoding: chunked, identity',
        'Host: a\r\nHost: b',
        'Expect: 100-continue',
        'Expect: 200-ok',
        'Content-Encoding: gzip',
        'X-Null: \u0000',
        'Folded: a\r\n continued',
      ),
    }),
    fc.constant({ kind: 'bare-lf' as const }),
    fc.constant({ kind: 'pipelined' as const }),
    fc.constant({ kind: 'no-host' as const }),
  );
}

/**
 * Requests a server must answer (with the error JSON and a closed connection) while the client keeps its side open
 * and never sends more: what Node would otherwise answer with a bare status line, drop, or wait on.
 * `auth` is a valid credential header line.
 */
export function stalledRequests(auth: string, path = '/v1/completions'): { name: string; bytes: Buffer }[] {
  const cases: [string, string][] = [
    ['CONNECT', 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n'],
    ['no Host', `GET /v1/models HTTP/1.1\r\n${auth}\r\n\r\n`],
    ['Expect: 200-ok', `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}`],
    [
      '100-continue over the body limit',
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n`,
    ],
    [
      'chunk size 2^64-1, no data',
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n`,
    ],
    ['declared body never sent, no credentials', `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`],
    [
      'declared body never sent, wrong bearer',
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 1000\r\n\r\n`,
    ],
    [
      'declared body never sent, malformed signature',
      `POST ${path} HTTP/1.1\r\nHost: x\r\nx-realign-timestamp: soon\r\nx-realign-nonce: abcdefgh12\r\nx-realign-signature: v1=zz\r\nContent-Length: 1000\r\n\r\n`,
    ],
    [
      'declared body never sent, valid bearer',
      `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth}\r\nContent-Length: 1000\r\n\r\n{"model":`,
    ],
  ];
  return cases.map(([name, text]) => ({ name, bytes: Buffer.from(text, 'latin1') }));
}

/** The raw bytes of a request with `headers` and `body`, broken by `m`. */
export function rawRequest(method: string, path: string, headers: Record<string, string>, body: string, m: RawMutation): Buffer {
  const bodyBytes = Buffer.from(body, 'utf8');
  let line = `${method} ${path} HTTP/1.1`;
  const head = ['Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  let payload: Buffer = bodyBytes;
  let length: string | null = String(bodyBytes.length);
  switch (m.kind) {
    case 'length':
      length = String(Math.max(0, bodyBytes.length + m.delta));
      break;
    case 'double-length':
      head.push(`Content-Length: ${m.second}`);
      break;
    case 'chunked':
      length = null;
      head.push('Transfer-Encoding: chunked');
      payload = Buffer.from(m.chunk, 'latin1');
      break;
    case 'request-line':
      line = m.line;
      break;
    case 'header':
      head.push(m.line);
      break;
  }
  if (length !== null) head.unshift(`Content-Length: ${length}`);
  if (m.kind === 'no-host') head.splice(head.indexOf('Host: 127.0.0.1'), 1);
  const eol = m.kind === 'bare-lf' ? '\n' : '\r\n';
  let bytes = Buffer.concat([Buffer.from(`${line}${eol}${head.join(eol)}${eol}${eol}`, 'latin1'), payload]);
  if (m.kind === 'pipelined') bytes = Buffer.concat([bytes, bytes]);
  if (m.kind === 'flip' && bytes.length > 0) bytes[Math.min(bytes.length - 1, Math.floor(m.at * bytes.length))] = m.byte;
  if (m.kind === 'truncate') bytes = bytes.subarray(0, Math.floor(m.at * bytes.length));
  return bytes;
}

/** One response read off a raw connection. */
export interface RawResponse {
  status: number;
  contentType: string;
  body: string;
}

/** What came back on a raw connection: the responses seen, and whether the server closed it in time. */
export interface RawOutcome {
  responses: RawResponse[];
  closed: boolean;
}

/** Splits the bytes a server sent into responses (bodies framed by Content-Length; a chunked body is kept raw). */
export function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let at = 0;
  for (;;) {
    const start = text.indexOf('HTTP/1.', at);
    if (start < 0) return out;
    const headEnd = text.indexOf('\r\n\r\n', start);
    if (headEnd < 0) return out;
    const lines = text.slice(start, headEnd).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const header = (name: string) =>
      lines
        .find((l) => l.toLowerCase().startsWith(`${name}:`))
        ?.slice(name.length + 1)
        .trim();
    const length = header('content-length');
    const bodyStart = headEnd + 4;
    const bodyEnd =
      length !== undefined
        ? bodyStart + Number(length)
        : status < 200
          ? bodyStart
          : text.indexOf('HTTP/1.', bodyStart) >= 0
            ? text.indexOf('HTTP/1.', bodyStart)
            : text.length;
    out.push({
      status,
      contentType: header('content-type') ?? '',
      body: Buffer.from(text.slice(bodyStart, bodyEnd), 'latin1').toString('utf8'),
    });
    at = Math.max(bodyEnd, bodyStart);
  }
}

/**
 * Sends `bytes` and reads until the server closes the connection. Requests carry `Connection: close`, so a server
 * that read a whole request answers and closes; one still waiting for more (a body shorter than announced) gets
 * the end of the client's side after `graceMs` — as a client that gives up would do. Not closed by `deadlineMs`
 * counts as a hang.
 */
export function sendRaw(port: number, bytes: Buffer, graceMs: number, deadlineMs: number): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (closed: boolean) => {
      clearTimeout(grace);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ responses: parseResponses(Buffer.concat(chunks).toString('latin1')), closed });
    };
    const grace = setTimeout(() => socket.end(), graceMs);
    const deadline = setTimeout(() => finish(false), deadlineMs);
    socket.on('data', (d) => chunks.push(d));
    // a reset after the server answered and closed is an ordinary end of a bad request
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write(bytes));
  });
}
