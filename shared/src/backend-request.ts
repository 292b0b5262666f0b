/**
 * The contract between the halves: what the edge sends a backend for one request — the request with λ resolved
 * under the tenant's policy and its routing fields (`preset`, `user`) removed, the field the client wrote λ in,
 * and the policy's outcome — built by one function, {@link buildBackendRequest}. The backend reads the same
 * request back with `readRequest` and learns the client's λ field from {@link lambdaFieldOf}, so both halves name
 * the same field in the same error.
 */
import { mixUnderPolicy } from './adapter-mix.ts';
import type { ApiError } from './errors.ts';
import type { LambdaField } from './generation-fields.ts';
import { HEADERS } from './headers.ts';
import { resolveLambda, resolveLambdaList, type LambdaPolicy, type LambdaSource, type UserPreference } from './lambda-policy.ts';
import type { ParsedRequest, RequestByKind, RequestKind } from './parse-request.ts';
import { applySamplingDefaults } from './sampling-defaults.ts';

/** The body a backend gets: the validated request without `preset` and `user`, λ resolved (`lambdas` for logits). */
export type BackendBody<K extends RequestKind> = K extends 'logits'
  ? Omit<RequestByKind['logits'], 'preset' | 'user'> & { lambdas: number[] }
  : Omit<RequestByKind[K], 'preset' | 'user'> & { lambda: number };

/** What the λ policy decided for a request. */
export interface PolicyOutcome {
  /** The λ it runs with: one for a generation, one per requested value for logits. */
  lambdas: number[];
  /** The preset applied (its sampling defaults filled unset fields), or null. */
  preset: string | null;
  source: LambdaSource;
  /** Whether a λ was clamped into the tenant's range. */
  clamped: boolean;
}

/** What the edge sends a backend for one request of `kind`. */
export interface BackendRequest<K extends RequestKind = RequestKind> {
  kind: K;
  body: BackendBody<K>;
  /** The field the client wrote λ in (`lambda`, `control`), or null when λ came from the policy. */
  lambdaField: LambdaField | null;
  outcome: PolicyOutcome;
}

function withoutRoutingFields<T extends { preset?: unknown; user?: unknown }>(request: T): Omit<T, 'preset' | 'user'> {
  const { preset: _preset, user: _user, ...rest } = request;
  return rest;
}

/**
 * Resolves a parsed request's λ under `policy` (explicit value, else preset, else the user's preference, else the
 * tenant's default, else the model's) and builds what the backend gets; an ApiError when the policy refuses it
 * (errors about λ name the field the client wrote it in).
 */
export function buildBackendRequest<K extends RequestKind>(
  kind: K,
  parsed: ParsedRequest<K>,
  policy: LambdaPolicy,
  userPreference: UserPreference | null,
): BackendRequest<K> | ApiError {
  const lambdaField = parsed.lambdaField;
  if (kind === 'logits') {
    const logits = parsed.request as RequestByKind['logits'];
    const r = resolveLambdaList(policy, { lambdas: logits.lambdas, preset: logits.preset, userPreference, lambdaField });
    if (r instanceof Error) return r;
    const body: BackendBody<'logits'> = { ...withoutRoutingFields(logits), lambdas: r.lambdas };
    return { kind, body: body as BackendBody<K>, lambdaField, outcome: r };
  }
  const gen = parsed.request as RequestByKind['chat' | 'completions'];
  const r = resolveLambda(policy, { lambda: gen.lambda, preset: gen.preset, userPreference, lambdaField });
  if (r instanceof Error) return r;
  const filled = applySamplingDefaults(gen, r.sampling);
  // a mix gives each adapter its λ (adapter-mix.ts), each bounded by the policy like an explicit λ; the resolved
  // single λ does not travel beside it
  const mix = gen.mix === undefined ? null : mixUnderPolicy(gen.mix, policy);
  if (mix instanceof Error) return mix;
  const body =
    mix === null ? { ...withoutRoutingFields(filled), lambda: r.lambda } : { ...withoutRoutingFields(filled), mix: mix.mix };
  const outcome = { lambdas: [r.lambda], preset: r.preset, source: r.source, clamped: r.clamped || (mix?.clamped ?? false) };
  return { kind, body: body as BackendBody<K>, lambdaField, outcome };
}

/** The headers that travel with a backend request's body (beside the signature and the request ids). */
export function backendRequestHeaders(r: BackendRequest): Record<string, string> {
  return r.lambdaField === null ? {} : { [HEADERS.lambdaField]: r.lambdaField };
}

/**
 * The λ field a backend names in its errors: the one the edge says the client used (the edge's body always carries
 * the resolved λ as `lambda` or `lambdas`), else the request's own; null when the client wrote none.
 */
export function lambdaFieldOf(header: string | null | undefined, parsed: LambdaField | null): LambdaField | null {
  return header === 'lambda' || header === 'control' ? header : parsed;
}
