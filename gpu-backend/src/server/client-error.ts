/**
 * Requests the app never sees: those Node's HTTP parser rejects (broken framing, oversized headers, a request that
 * times out) and those the Hono adapter cannot turn into a Request (a target like `*`, an unreadable Host header).
 * Both would otherwise get a bare status line; here they get the same OpenAI error JSON as everything else.
 */
import { RequestError } from '@hono/node-server';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { errorBody, invalidRequest, serverError } from '../../../shared/src/errors.ts';

/** Status, reason phrase, error code and message for a parser error code. */
function describe(code: string | undefined): [number, string, string, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'Request Header Fields Too Large', 'headers_too_large', 'request headers (or the URL) are too large; send a shorter URL and fewer or smaller headers'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'Request Timeout', 'request_timeout', 'the request was not received in time; send the whole request promptly'];
  return [400, 'Bad Request', 'malformed_http', `malformed HTTP request (${code ?? 'parse error'}); check the request line, headers and body framing`];
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
  const body = JSON.stringify(errorBody(message, 'invalid_request_error', null, code));
  const head = [`HTTP/1.1 ${status} ${reason}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, `x-request-id: ${randomUUID()}`, 'connection: close'];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** The adapter's `errorHandler`: a request that cannot be read as a URL is a 400, anything else a generic 500. */
export function unreadableRequest(err: unknown): Response {
  const e =
    err instanceof RequestError
      ? invalidRequest(`the request cannot be read (${err.message}); send an origin-form target like /v1/completions and a valid Host header`, null, 'malformed_http')
      : serverError();
  return Response.json(e.toBody(), { status: e.status, headers: { 'x-request-id': randomUUID() } });
}
