/**
 * Requests the app never sees: those Node's HTTP parser rejects (broken framing, oversized headers, a request that
 * times out) and those the Hono adapter cannot turn into a Request (a target like `*`, an unreadable Host header).
 * Both would otherwise get a bare status line; here they get the same OpenAI error JSON as everything else. So do
 * the requests Node answers itself: CONNECT, an unknown `Expect`, HTTP/1.1 without Host.
 */
import { RequestError } from '@hono/node-server';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, invalidRequest, payloadTooLarge, serverError } from '../../../shared/src/errors.ts';

/** Status, reason phrase, error code and message for a parser error code. */
function describe(code: string | undefined): [number, string, string, string] {
  if (code === 'HPE_HEADER_OVERFLOW')
    return [
      431,
      'Request Header Fields Too Large',
      'headers_too_large',
      'request headers (or the URL) are too large; send a shorter URL and fewer or smaller headers',
    ];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return [408, 'Request Timeout', 'request_timeout', 'the request was not received in time; send the whole request promptly'];
  return [
    400,
    'Bad Request',
    'malformed_http',
    `malformed HTTP request (${code ?? 'parse error'}); check the request line, headers and body framing`,
  ];
}

/** Writes an error answer straight onto a socket (no response object exists for it) and closes it. */
function writeRaw(socket: Socket, status: number, reason: string, code: string, message: string, extra: string[] = []): void {
  const body = JSON.stringify(errorBody(message, 'invalid_request_error', null, code));
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    `x-request-id: ${randomUUID()}`,
    ...extra,
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** Answers on a response object and closes the connection (whatever body the client meant to send is not read). */
function writeJson(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify(errorBody(message, 'invalid_request_error', null, code));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': randomUUID(),
    connection: 'close',
    ...extra,
  });
  res.end(body);
}

/** The server's `connect` listener: realign is no proxy, so CONNECT gets a 405, not a dropped connection. */
export function refuseConnect(_req: IncomingMessage, socket: Socket): void {
  socket.on('error', () => undefined);
  writeRaw(
    socket,
    405,
    'Method Not Allowed',
    'method_not_allowed',
    'CONNECT is not allowed: this server is not a proxy; send GET or POST to a /v1 route',
    ['allow: GET, POST'],
  );
}

/** The server's `checkExpectation` listener: an `Expect` other than 100-continue gets a 417 with the error JSON. */
export function refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
  writeJson(
    res,
    417,
    'expectation_failed',
    `unsupported expectation "${String(req.headers.expect).slice(0, 64)}"; only "Expect: 100-continue" is understood, or send no Expect header`,
  );
}

/**
 * The server's `checkContinue` listener: a declared body over the limit is refused (413) before the client sends
 * it; otherwise the client is told to continue and the request goes on as usual.
 */
export function continueUnlessTooLarge(maxBytes: number, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  return function checkContinue(req: IncomingMessage, res: ServerResponse): void {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      const e = payloadTooLarge(maxBytes);
      writeJson(res, 413, e.code!, e.message);
      return;
    }
    res.writeContinue();
    handle(req, res);
  };
}

/**
 * A request the app must not see: HTTP/1.1 without Host (RFC 9112 §3.2 makes it a 400; the server's own check would
 * answer with a bare status line). True when it was answered.
 */
export function answeredMalformed(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && req.headers.host === undefined) {
    writeJson(res, 400, 'missing_host', 'HTTP/1.1 requests need a Host header; send one (e.g. "Host: 127.0.0.1:8000")');
    return true;
  }
  return false;
}

/** A `clientError` listener for the HTTP server: answers, then closes (the framing cannot be trusted any more). */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  // like Node's default: only answer when nothing of another response is on the wire yet
  const busy = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || busy) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] = describe(err.code);
  writeRaw(socket, status, reason, code, message);
}

/** The adapter's `errorHandler`: a request that cannot be read as a URL is a 400, anything else a generic 500. */
export function unreadableRequest(err: unknown): Response {
  const e =
    err instanceof RequestError
      ? invalidRequest(
          `the request cannot be read (${err.message}); send an origin-form target like /v1/completions and a valid Host header`,
          null,
          'malformed_http',
        )
      : serverError();
  return Response.json(e.toBody(), { status: e.status, headers: { 'x-request-id': randomUUID() } });
}
