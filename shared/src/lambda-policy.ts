/**
 * λ policy of one tenant for one model, and the pure function that decides which λ a request runs with.
 *
 * Order of resolution (the first that applies wins):
 *   1. explicit `lambda` (or its alias `control`) in the request — only if the policy allows explicit λ;
 *   2. the `preset` field of the request;
 *   3. the end user's stored preference (a λ or a preset);
 *   4. the tenant's default preset for the model;
 *   5. the model's default λ.
 *
 * Decisions taken here (the edge documents them to tenants):
 *   - An explicit λ where `allowExplicit` is false is a 403 `permission_error` (`lambda_not_allowed`): the value
 *     is well-formed, the caller is simply not permitted to choose it. Use a preset instead.
 *   - `outOfRange: 'reject'` applies to what the *client* sent (an explicit λ): a 400 `lambda_out_of_range`.
 *     Values from admin-configured sources (presets, preferences, defaults) are always clamped into the range,
 *     because the client cannot fix them; the result then says `clamped: true`.
 *   - A `preset` named in the request that does not exist is a 400 `unknown_preset`. A stored preference or a
 *     tenant default that names a missing preset is skipped (resolution goes on), so a stale setting never
 *     breaks requests.
 *   - When both `lambda` and `preset` are sent, λ comes from `lambda` and the preset still supplies its
 *     sampling defaults; the preset is reported.
 */
import type { AdapterMix } from './adapter-mix.ts';
import type { AdapterPolicy } from './adapter-policy.ts';
import { ApiError, invalidRequest, permissionDenied } from './errors.ts';
import type { LambdaField } from './generation-fields.ts';
import type { SamplingDefaults } from './sampling-defaults.ts';

/** Closed interval of λ values a tenant may run with. */
export interface LambdaRange {
  min: number;
  max: number;
}

/** A named λ with optional sampling defaults. */
export interface LambdaPreset {
  lambda: number;
  sampling: SamplingDefaults;
  /** The named adapter its λ applies to (adapter-policy.ts), if it names one. */
  adapter?: string;
  /** λ per named adapter in place of `lambda` (a generation that sets no λ, adapter or mix of its own). */
  mix?: AdapterMix;
}

/** The effective policy of one tenant for one model (merged by the edge from its tenant-wide and per-model rows). */
export interface LambdaPolicy {
  range: LambdaRange;
  presets: Record<string, LambdaPreset>;
  /** Preset used when the request and the user's preference say nothing; null = fall back to the model's default. */
  defaultPreset: string | null;
  /** Whether a client may send `lambda` / `control` itself. */
  allowExplicit: boolean;
  /** What happens to an explicit λ outside `range`. */
  outOfRange: 'clamp' | 'reject';
  /** The model's own default λ (from the model catalogue). */
  modelDefaultLambda: number;
  /** Which named adapters the tenant may use and their own λ bounds (absent: all, with `range`). */
  adapters?: AdapterPolicy;
}

/** The range a tenant gets unless an admin widens it: interpolation only, no extrapolation. */
export const DEFAULT_LAMBDA_RANGE: LambdaRange = { min: 0, max: 1 };

/** An end user's stored preference: a λ, or a preset name (a λ wins when both are stored). */
export interface UserPreference {
  lambda: number | null;
  preset: string | null;
}

/** What a request contributes to the resolution. */
export interface LambdaInput {
  /** `lambda` (or `control`) as sent. */
  lambda?: number;
  /** The field the client wrote it in, named by every error about it (default `lambda`). */
  lambdaField?: LambdaField | null;
  /** `preset` as sent. */
  preset?: string;
  /** The stored preference of the request's user (`user` field or `x-realign-user` header), if any. */
  userPreference?: UserPreference | null;
}

/** Where the applied λ came from. */
export type LambdaSource = 'explicit' | 'preset' | 'user' | 'tenant_default' | 'model_default';

/** The outcome of {@link resolveLambda}. */
export interface ResolvedLambda {
  /** The λ the request runs with (inside the range). */
  lambda: number;
  /** The λ before clamping. */
  requested: number;
  /** The preset applied (its sampling defaults fill unset fields), or null. */
  preset: string | null;
  source: LambdaSource;
  clamped: boolean;
  /** Sampling defaults of the applied preset ({} when none). */
  sampling: SamplingDefaults;
}

/** Clamps `value` into `range`. */
export function clampLambda(value: number, range: LambdaRange): number {
  return Math.min(range.max, Math.max(range.min, value));
}

function settle(policy: LambdaPolicy, requested: number, source: LambdaSource, preset: string | null): ResolvedLambda {
  const lambda = clampLambda(requested, policy.range);
  const sampling = preset !== null ? (policy.presets[preset]?.sampling ?? {}) : {};
  return { lambda, requested, preset, source, clamped: lambda !== requested, sampling };
}

function presetOf(policy: LambdaPolicy, name: string | null | undefined): LambdaPreset | undefined {
  return name ? (Object.hasOwn(policy.presets, name) ? policy.presets[name] : undefined) : undefined;
}

/** Resolves the λ of one request under `policy` (see the module comment for the rules). */
export function resolveLambda(policy: LambdaPolicy, input: LambdaInput): ResolvedLambda | ApiError {
  const named = input.preset;
  if (named !== undefined && presetOf(policy, named) === undefined) {
    const known = Object.keys(policy.presets);
    const hint = known.length ? `one of ${known.map((k) => `"${k}"`).join(', ')}` : 'no presets are defined for this model';
    return invalidRequest(`\`preset\` "${named}" does not exist for this model; use ${hint}`, 'preset', 'unknown_preset');
  }
  if (input.lambda !== undefined) {
    const field = input.lambdaField ?? 'lambda';
    if (!Number.isFinite(input.lambda)) return invalidRequest(`\`${field}\` must be a finite number, got ${input.lambda}`, field);
    if (!policy.allowExplicit) {
      return permissionDenied(
        'this API key may not set `lambda` (or `control`); send a `preset` instead, or ask your admin to allow explicit λ',
        'lambda_not_allowed',
        field,
      );
    }
    const { min, max } = policy.range;
    if (policy.outOfRange === 'reject' && (input.lambda < min || input.lambda > max)) {
      return invalidRequest(
        `\`${field}\` must be in [${min}, ${max}] for this model, got ${input.lambda}`,
        field,
        'lambda_out_of_range',
      );
    }
    return settle(policy, input.lambda, 'explicit', named ?? null);
  }
  if (named !== undefined) return settle(policy, presetOf(policy, named)!.lambda, 'preset', named);
  const pref = input.userPreference;
  if (pref) {
    if (pref.lambda !== null && Number.isFinite(pref.lambda)) return settle(policy, pref.lambda, 'user', null);
    const p = presetOf(policy, pref.preset);
    if (p) return settle(policy, p.lambda, 'user', pref.preset);
  }
  const tenantDefault = presetOf(policy, policy.defaultPreset);
  if (tenantDefault) return settle(policy, tenantDefault.lambda, 'tenant_default', policy.defaultPreset);
  return settle(policy, policy.modelDefaultLambda, 'model_default', null);
}

/** The outcome of {@link resolveLambdaList}: one λ per requested value (or the single resolved λ). */
export interface ResolvedLambdaList {
  lambdas: number[];
  preset: string | null;
  source: LambdaSource;
  clamped: boolean;
}

/**
 * Resolves the `lambdas` of a `/v1/logits` request: each listed value is treated as an explicit λ (the same
 * permission and range rules); without a list, the single λ of {@link resolveLambda} is used. Errors name
 * `lambdas[i]`, or the single field (`lambda`, `control`) the client wrote the one value in.
 */
export function resolveLambdaList(
  policy: LambdaPolicy,
  input: { lambdas?: number[]; preset?: string; userPreference?: UserPreference | null; lambdaField?: LambdaField | null },
): ResolvedLambdaList | ApiError {
  if (input.lambdas === undefined) {
    const one = resolveLambda(policy, { preset: input.preset, userPreference: input.userPreference });
    if (one instanceof ApiError) return one;
    return { lambdas: [one.lambda], preset: one.preset, source: one.source, clamped: one.clamped };
  }
  const out: number[] = [];
  let clamped = false;
  let preset: string | null = null;
  for (const [i, value] of input.lambdas.entries()) {
    const single = input.lambdaField ?? null;
    const r = resolveLambda(policy, { lambda: value, preset: input.preset, lambdaField: single });
    if (r instanceof ApiError) {
      if (single !== null || r.param !== 'lambda') return r;
      return new ApiError(r.status, r.message.replace('`lambda`', `\`lambdas[${i}]\``), {
        type: r.type,
        code: r.code,
        param: `lambdas[${i}]`,
      });
    }
    out.push(r.lambda);
    clamped ||= r.clamped;
    preset = r.preset;
  }
  return { lambdas: out, preset, source: 'explicit', clamped };
}
