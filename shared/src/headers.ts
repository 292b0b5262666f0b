/**
 * Names of the headers realign's two halves read or write (lower case), defined once for both: the edge's answers
 * to clients, and what the edge sends a backend beside the signed body (the signature's own headers are in
 * signing.ts).
 */
export const HEADERS = {
  requestId: 'x-request-id',
  /** The client's own request id (OpenAI's SDKs send it); echoed, and kept in the usage row beside the edge's id. */
  clientRequestId: 'x-client-request-id',
  user: 'x-realign-user',
  /**
   * The λ a request ran with (a comma-separated list for /v1/logits); both halves set it. A generation that runs on
   * a `mix` (the request's or its preset's) has no single λ: it gets {@link HEADERS.mix} instead of this header.
   */
  lambda: 'x-realign-lambda',
  /**
   * The mix a request runs on, as `name=λ,…` in the mix's order ({@link mixHeaderValue}), when its body carries a
   * `mix`: a generation's in place of x-realign-lambda, a /v1/logits request's beside its λ list (the mix's result
   * comes after the λ values' results). The edge sends what it resolved (clamped under the policy), the backend what
   * it ran; both set it.
   */
  mix: 'x-realign-mix',
  preset: 'x-realign-preset',
  lambdaSource: 'x-realign-lambda-source',
  lambdaClamped: 'x-realign-lambda-clamped',
  cache: 'x-realign-cache',
  attempts: 'x-realign-attempts',
  retryAfter: 'retry-after',
  /** Edge → backend: the id the backends keep this request's usage under. */
  dispatchId: 'x-realign-dispatch-id',
  /** Edge → backend: the field the client wrote λ in (`lambda` or its alias `control`), so errors name it. */
  lambdaField: 'x-realign-lambda-field',
} as const;

/** The value of {@link HEADERS.mix}: `name=λ` per adapter of the mix, in its order, comma-separated. */
export function mixHeaderValue(mix: Readonly<Record<string, number>>): string {
  return Object.entries(mix)
    .map(([name, lambda]) => `${name}=${lambda}`)
    .join(',');
}
