/**
 * The first half of a generation request, up to the point where it can be answered: validate the body with the
 * shared schema (and a logits answer's size), check the user and the model grant, resolve λ under the tenant's
 * policy, build the exact body the backend will get — and only then, with nothing left to refuse, ask the rate
 * limiter to admit it with the cost of that body. A request refused on the way is never charged. The limiter's
 * answer is not awaited here: respond.ts looks the answer up in the cache meanwhile and awaits it ({@link admitted})
 * before answering anything, so a cache HIT costs the longer of the two, not their sum. Sets the λ headers here and
 * the rate-limit headers in {@link admitted}.
 */
import type { Context } from 'hono';
import { invalidRequest, permissionDenied } from '../../../shared/src/errors.ts';
import {
  buildBackendRequest,
  type BackendBody,
  type BackendRequest,
  type PolicyOutcome,
} from '../../../shared/src/backend-request.ts';
import { HEADERS, mixHeaderValue } from '../../../shared/src/headers.ts';
import { checkLogitsAnswerSize } from '../../../shared/src/logits-bounds.ts';
import { readRequest, type RequestByKind, type RequestKind } from '../../../shared/src/parse-request.ts';
import type { AppEnv } from '../app-env.ts';
import { readConfig, type EdgeConfig } from '../config.ts';
import { loadRequestContext, modelNotFound } from '../db/request-context.ts';
import { readJson } from '../http/read-json.ts';
import { buildPolicy, buildPreference } from '../policy/build-policy.ts';
import { acquire, admissionError } from '../ratelimit/admit.ts';
import type { AcquireResult } from '../ratelimit/limits.ts';
import { estimateTokens, logitsShape } from '../ratelimit/estimate.ts';
import { rateLimitHeaders } from '../ratelimit/rate-limit-headers.ts';
import type { UsageContext } from '../usage/usage-recorder.ts';

/** A request ready to be answered. */
export interface Prepared {
  kind: RequestKind;
  config: EdgeConfig;
  /** What the backend gets: the body with λ resolved, preset defaults filled, `preset` and `user` removed. */
  backend: BackendRequest;
  stream: boolean;
  /** Whether the client asked for the usage chunk of a stream. */
  includeUsage: boolean;
  temperature: number | undefined;
  seed: number | undefined;
  /** Whether the client sent `max_tokens` itself (else it came from a preset, or is unset). */
  clientMaxTokens: boolean;
  usage: UsageContext;
  /** The rate limiter's answer for this request (its one Durable Object call), started last; see {@link admitted}. */
  admission: Promise<AcquireResult>;
}

const USER_ID = /^[\x21-\x7e]{1,256}$/;

/**
 * The end user a request acts as: the `user` field, else the x-realign-user header. A key bound to a user acts as
 * that user only: naming another one is a 403, naming none means the bound one.
 */
function userIdOf(c: Context<AppEnv>, fromBody: string | undefined): string | null {
  const header = c.req.header(HEADERS.user);
  if (header !== undefined && !USER_ID.test(header))
    throw invalidRequest(`header ${HEADERS.user} must be 1–256 visible ASCII characters`, HEADERS.user);
  const named = fromBody ?? header ?? null;
  const bound = c.get('auth').boundUser;
  if (bound === null || named === bound) return named;
  if (named === null) return bound;
  throw permissionDenied(
    `this API key is bound to one user and may not act as \`${named.slice(0, 64)}\`; leave \`user\` (and ${HEADERS.user}) unset or send the key's own user`,
    'user_not_allowed',
    fromBody !== undefined ? 'user' : HEADERS.user,
  );
}

function setLambdaHeaders(c: Context<AppEnv>, outcome: PolicyOutcome): void {
  // a generation on a mix has no single λ: it says its mix instead (logits: its λ values and the mix after them)
  if (outcome.lambdas.length > 0) c.header(HEADERS.lambda, outcome.lambdas.join(','));
  if (outcome.mix) c.header(HEADERS.mix, mixHeaderValue(outcome.mix));
  c.header(HEADERS.preset, outcome.preset ?? 'none');
  c.header(HEADERS.lambdaSource, outcome.source);
  if (outcome.clamped) c.header(HEADERS.lambdaClamped, 'true');
}

/** A `max_tokens` the client sent that can never fit the model's context (the prompt takes at least one token). */
function checkMaxTokensFit(model: string, sent: number | undefined, context: number | null): void {
  if (context === null || sent === undefined || sent < context) return;
  // the backend checks the exact prompt itself
  throw invalidRequest(
    `\`max_tokens\` is ${sent} but model \`${model}\` has a context of ${context} tokens; lower max_tokens below ${context}`,
    'max_tokens',
    'context_length_exceeded',
  );
}

/** Runs the checks and resolution for one request of `kind`; throws ApiErrors (400/403/404/413/429). */
export async function prepare<K extends RequestKind>(c: Context<AppEnv>, kind: K): Promise<Prepared> {
  const config = readConfig(c.env);
  const auth = c.get('auth');
  const parsed = readRequest(kind, await readJson(c.req.raw, config.maxBodyBytes));
  if (parsed instanceof Error) throw parsed;
  const request = parsed.request;
  if (kind === 'logits') {
    // the answer's size as far as the edge can tell (a text input's positions are estimated; the backend counts them)
    const logits = request as RequestByKind['logits'];
    const tooLarge = checkLogitsAnswerSize(logitsShape(logits, estimateTokens(kind, request).prompt), config.maxLogitsEntries);
    if (tooLarge) throw tooLarge;
  }

  const userId = userIdOf(c, request.user);
  const rows = await loadRequestContext(c.env, auth.tenantId, request.model, userId);
  if (rows.model === null) throw modelNotFound(request.model);
  const context = rows.model.context_length;
  const sentMaxTokens = kind === 'logits' ? undefined : (request as RequestByKind['chat' | 'completions']).max_tokens;
  checkMaxTokensFit(request.model, sentMaxTokens, context);
  const backend = buildBackendRequest(kind, parsed, buildPolicy(rows), buildPreference(rows));
  if (backend instanceof Error) throw backend;
  setLambdaHeaders(c, backend.outcome);
  const lambdas = backend.outcome.lambdas;

  // Admission last, with the cost of the body the backend will get (a preset's max_tokens included): nothing
  // refused above was charged. A cost larger than a whole bucket is refused, never banked as debt.
  const estimate = estimateTokens(kind, backend.body as RequestByKind[K], context);
  const admission = acquire(c.env, auth, estimate.total);
  // awaited by admitted(); this only keeps a refusal that settles before then from counting as unhandled
  admission.catch(() => undefined);

  const gen = kind === 'logits' ? null : (backend.body as BackendBody<'chat' | 'completions'>);
  const stream = gen?.stream === true;
  return {
    kind,
    config,
    backend,
    stream,
    includeUsage: stream && gen?.stream_options?.include_usage === true,
    temperature: gen?.temperature,
    seed: gen?.seed,
    clientMaxTokens: sentMaxTokens !== undefined,
    usage: {
      requestId: c.get('requestId'),
      clientRequestId: c.get('clientRequestId'),
      auth,
      model: request.model,
      endpoint: new URL(c.req.url).pathname,
      stream,
      lambda: lambdas.length === 1 ? lambdas[0]! : null,
      preset: backend.outcome.preset,
      estimatedTokens: estimate.total,
      promptEstimate: estimate.prompt,
      answerEntries: estimate.answerEntries,
    },
    admission,
  };
}

/**
 * Waits for the rate limiter's answer to a prepared request: sets the rate-limit headers, and throws the 429 (or the
 * 400 of a cost above a whole bucket, or the 503 of an unreachable limiter that fails closed) of a refusal. Nothing
 * may be answered or forwarded before it returns.
 */
export async function admitted(c: Context<AppEnv>, p: Prepared): Promise<void> {
  const admission = await p.admission;
  for (const [k, v] of Object.entries(rateLimitHeaders(admission))) c.header(k, v);
  if (!admission.allowed) throw admissionError(admission, p.usage.estimatedTokens, p.kind === 'logits' ? null : 'max_tokens');
}
