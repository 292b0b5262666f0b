/**
 * The contract between the halves: what the edge sends a backend for one request — the request with λ resolved
 * under the tenant's policy and its routing fields (`preset`, `user`) removed, the field the client wrote λ in,
 * and the policy's outcome — built by one function, {@link buildBackendRequest}. The backend reads the same
 * request back with `readRequest` and learns the client's λ field from {@link lambdaFieldOf}, so both halves name
 * the same field in the same error.
 */
import { mixUnderPolicy, type AdapterMix } from './adapter-mix.ts';
import { adapterNotAllowed, clampPresetMix, mixNotAllowed, policyForAdapter } from './adapter-policy.ts';
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
  /**
   * The λ it runs with: one for a generation (none when it runs on a mix), one per requested value for logits.
   */
  lambdas: number[];
  /** The mix it runs on (the body's `mix`: a generation's in place of λ, a logits request's after its λ values). */
  mix?: AdapterMix;
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
 * (errors about λ name the field the client wrote it in). The adapter a λ applies to (the request's `adapter`,
 * else its preset's, else the model's default) must be one the tenant may use, and gives the λ range
 * (adapter-policy.ts); a `mix` (the request's, else its preset's) is checked adapter by adapter.
 */
export function buildBackendRequest<K extends RequestKind>(
  kind: K,
  parsed: ParsedRequest<K>,
  policy: LambdaPolicy,
  userPreference: UserPreference | null,
): BackendRequest<K> | ApiError {
  const lambdaField = parsed.lambdaField;
  if (kind === 'logits') {
    const r = buildLogits(parsed.request as RequestByKind['logits'], policy, userPreference, lambdaField);
    return r instanceof Error ? r : { kind, body: r.body as BackendBody<K>, lambdaField, outcome: r.outcome };
  }
  const gen = parsed.request as RequestByKind['chat' | 'completions'];
  const r = buildGeneration(gen, policy, userPreference, lambdaField);
  return r instanceof Error ? r : { kind, body: r.body as BackendBody<K>, lambdaField, outcome: r.outcome };
}

type Built<K extends RequestKind> = { body: BackendBody<K>; outcome: PolicyOutcome };

function buildLogits(
  logits: RequestByKind['logits'],
  policy: LambdaPolicy,
  userPreference: UserPreference | null,
  lambdaField: LambdaField | null,
): Built<'logits'> | ApiError {
  const adapter = logits.adapter ?? policy.adapters?.defaultAdapter ?? null;
  const denied =
    (adapter === null ? null : adapterNotAllowed(policy, adapter, 'adapter', logits.adapter ? 'request' : 'default')) ??
    (logits.mix === undefined ? null : mixNotAllowed(policy, logits.mix, 'request'));
  if (denied) return denied;
  const input = { lambdas: logits.lambdas, preset: logits.preset, userPreference, lambdaField };
  const r = resolveLambdaList(policyForAdapter(policy, adapter), input);
  if (r instanceof Error) return r;
  const mix = logits.mix === undefined ? null : mixUnderPolicy(logits.mix, policy);
  if (mix instanceof Error) return mix;
  const body: BackendBody<'logits'> = { ...withoutRoutingFields(logits), lambdas: r.lambdas, ...(mix ? { mix: mix.mix } : {}) };
  return { body, outcome: { ...r, clamped: r.clamped || (mix?.clamped ?? false), ...(mix ? { mix: mix.mix } : {}) } };
}

/** The preset whose λ a generation takes (an explicit λ takes only the named preset's defaults), or an error. */
function appliedPreset(
  gen: RequestByKind['chat' | 'completions'],
  policy: LambdaPolicy,
  userPreference: UserPreference | null,
): string | null | ApiError {
  if (gen.lambda !== undefined || gen.mix !== undefined) return gen.preset ?? null;
  const r = resolveLambda(policy, { preset: gen.preset, userPreference });
  return r instanceof Error ? r : r.preset;
}

/** Where a generation's λ goes: a mix (the request's or its preset's), or one adapter (null: the model has none). */
type AdapterChoice =
  | { mix: AdapterMix; from: 'request' | { preset: string } }
  | { adapter: string | null; from: 'request' | { preset: string } | 'default' };

function chooseAdapters(
  gen: RequestByKind['chat' | 'completions'],
  policy: LambdaPolicy,
  presetName: string | null,
): AdapterChoice {
  if (gen.mix !== undefined) return { mix: gen.mix, from: 'request' };
  if (gen.adapter !== undefined) return { adapter: gen.adapter, from: 'request' };
  const preset = presetName === null ? undefined : policy.presets[presetName];
  if (preset?.adapter !== undefined) return { adapter: preset.adapter, from: { preset: presetName! } };
  // an explicit λ beats a preset's mix, as it beats a preset's λ
  if (preset?.mix !== undefined && gen.lambda === undefined) return { mix: preset.mix, from: { preset: presetName! } };
  return { adapter: policy.adapters?.defaultAdapter ?? null, from: 'default' };
}

function buildGeneration(
  gen: RequestByKind['chat' | 'completions'],
  policy: LambdaPolicy,
  userPreference: UserPreference | null,
  lambdaField: LambdaField | null,
): Built<'chat' | 'completions'> | ApiError {
  const presetName = appliedPreset(gen, policy, userPreference);
  if (presetName instanceof Error) return presetName;
  const choice = chooseAdapters(gen, policy, presetName);
  const denied =
    'mix' in choice
      ? mixNotAllowed(policy, choice.mix, choice.from)
      : choice.adapter === null
        ? null
        : adapterNotAllowed(policy, choice.adapter, 'adapter', choice.from);
  if (denied) return denied;
  const adapter = 'mix' in choice ? null : choice.adapter;
  const r = resolveLambda(policyForAdapter(policy, adapter), {
    lambda: gen.lambda,
    preset: gen.preset,
    userPreference,
    lambdaField,
  });
  if (r instanceof Error) return r;
  const filled = withoutRoutingFields(applySamplingDefaults(gen, r.sampling));
  const outcome = { lambdas: [r.lambda], preset: r.preset, source: r.source, clamped: r.clamped };
  if (!('mix' in choice)) {
    // a preset's adapter travels in the body; the model's default is the backend's own
    const named = typeof choice.from === 'object' ? { adapter: choice.adapter! } : {};
    return { body: { ...filled, ...named, lambda: r.lambda } as BackendBody<'chat'>, outcome };
  }
  // a mix gives each adapter its λ (adapter-mix.ts): the request's bounded like explicit λ values, a preset's
  // clamped like a preset's λ; the resolved single λ does not travel beside it (nor does its clamping count)
  const mix = choice.from === 'request' ? mixUnderPolicy(choice.mix, policy) : clampPresetMix(policy, choice.mix);
  if (mix instanceof Error) return mix;
  return {
    body: { ...filled, mix: mix.mix } as BackendBody<'chat'>,
    outcome: { ...outcome, lambdas: [], mix: mix.mix, clamped: mix.clamped },
  };
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
