/** Names of the headers realign's edge reads or writes (lower case). */
export const HEADERS = {
  requestId: 'x-request-id',
  /** The client's own request id (OpenAI's SDKs send it); echoed, and kept in the usage row beside the edge's id. */
  clientRequestId: 'x-client-request-id',
  user: 'x-realign-user',
  lambda: 'x-realign-lambda',
  preset: 'x-realign-preset',
  lambdaSource: 'x-realign-lambda-source',
  lambdaClamped: 'x-realign-lambda-clamped',
  cache: 'x-realign-cache',
  attempts: 'x-realign-attempts',
  retryAfter: 'retry-after',
} as const;
