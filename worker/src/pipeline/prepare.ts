/**
 * The first half of a generation request, up to the point where it can be answered: validate the body with the
 * shared schema, admit it through the rate limiter, check the model grant, resolve λ under the tenant's policy,
 * and build the exact body the backend will get. Sets the rate-limit and λ headers on the way.
 */
import type { Context } from 'hono';
import { invalidRequest } from '../../../shared/src/errors.ts';
import { resolveLambda, resolveLambdaList, type LambdaSource } from '../../../shared/src/lambda-policy.ts';
import { parseRequest, type RequestByKind, type RequestKind } from '../../../shared/src/parse-request.ts';
import { applySamplingDefaults, type SamplingDefaults } from '../../../shared/src/sampling-defaults.ts';
import type { AppEnv } from '../app-env.ts';
import { readConfig, type EdgeConfig } from '../config.ts';
import { loadRequestContext, modelNotFound } from '../db/request-context.ts';
import { HEADERS } from '../http/header-names.ts';
import { readJson } from '../http/read-json.ts';
import { buildPolicy, buildPreference } from '../policy/build-policy.ts';
import { acquire, rateLimitError } from '../ratelimit/admit.ts';
import { estimateTokens } from '../ratelimit/estimate.ts';
import { rateLimitHeaders } from '../ratelimit/rate-limit-headers.ts';
import type { UsageContext } from '../usage/usage-recorder.ts';

/** A request ready to be answered. */
export interface Prepared {
  kind: RequestKind;
  config: EdgeConfig;
  /** The body for the backend: λ resolved, preset defaults filled, `preset` and `user` removed. */
  resolved: Record<string, unknown>;
  stream: boolean;
  /** Whether the client asked for the usage chunk of a stream. */
  includeUsage: boolean;
  temperature: number | undefined;
  seed: number | undefined;
  usage: UsageContext;
}

const USER_ID = /^[\x21-\x7e]{1,256}$/;

function userIdOf(c: Context<AppEnv>, fromBody: string | undefined): string | null {
  if (fromBody !== undefined) return fromBody;
  const header = c.req.header(HEADERS.user);
  if (header === undefined) return null;
  if (!USER_ID.test(header)) throw invalidRequest(`header ${HEADERS.user} must be 1–256 visible ASCII characters`, HEADERS.user);
  return header;
}

function withoutRoutingFields(request: object, sampling: SamplingDefaults): Record<string, unknown> {
  const { preset: _preset, user: _user, ...rest } = applySamplingDefaults(request as Record<string, number>, sampling) as Record<string, unknown>;
  return rest;
}

function setLambdaHeaders(c: Context<AppEnv>, lambdas: number[], preset: string | null, source: LambdaSource, clamped: boolean): void {
  c.header(HEADERS.lambda, lambdas.join(','));
  c.header(HEADERS.preset, preset ?? 'none');
  c.header(HEADERS.lambdaSource, source);
  if (clamped) c.header(HEADERS.lambdaClamped, 'true');
}

/** Runs the checks and resolution for one request of `kind`; throws ApiErrors (400/403/404/413/429). */
export async function prepare<K extends RequestKind>(c: Context<AppEnv>, kind: K): Promise<Prepared> {
  const config = readConfig(c.env);
  const auth = c.get('auth');
  const parsed = parseRequest(kind, await readJson(c.req.raw, config.maxBodyBytes));
  if (parsed instanceof Error) throw parsed;
  const request = parsed as RequestByKind[K];

  const estimatedTokens = estimateTokens(kind, request);
  const admission = await acquire(c.env, auth, estimatedTokens);
  for (const [k, v] of Object.entries(rateLimitHeaders(admission))) c.header(k, v);
  if (!admission.allowed) throw rateLimitError(admission);

  const userId = userIdOf(c, request.user);
  const rows = await loadRequestContext(c.env.DB, auth.tenantId, request.model, userId);
  if (rows.model === null) throw modelNotFound(request.model);
  const policy = buildPolicy(rows);
  const userPreference = buildPreference(rows);

  let resolved: Record<string, unknown>;
  let lambdaForUsage: number | null;
  let preset: string | null;
  if (kind === 'logits') {
    const logits = request as RequestByKind['logits'];
    const r = resolveLambdaList(policy, { lambdas: logits.lambdas, preset: logits.preset, userPreference });
    if (r instanceof Error) throw r;
    setLambdaHeaders(c, r.lambdas, r.preset, r.source, r.clamped);
    resolved = { ...withoutRoutingFields(logits, {}), lambdas: r.lambdas };
    lambdaForUsage = r.lambdas.length === 1 ? r.lambdas[0]! : null;
    preset = r.preset;
  } else {
    const gen = request as RequestByKind['chat' | 'completions'];
    const r = resolveLambda(policy, { lambda: gen.lambda, preset: gen.preset, userPreference });
    if (r instanceof Error) throw r;
    setLambdaHeaders(c, [r.lambda], r.preset, r.source, r.clamped);
    resolved = { ...withoutRoutingFields(gen, r.sampling), lambda: r.lambda };
    lambdaForUsage = r.lambda;
    preset = r.preset;
  }

  const stream = resolved.stream === true;
  return {
    kind,
    config,
    resolved,
    stream,
    includeUsage: stream && (resolved.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true,
    temperature: resolved.temperature as number | undefined,
    seed: resolved.seed as number | undefined,
    usage: {
      requestId: c.get('requestId'),
      auth,
      model: request.model,
      endpoint: new URL(c.req.url).pathname,
      stream,
      lambda: lambdaForUsage,
      preset,
      estimatedTokens,
    },
  };
}
