/**
 * Turns a request's D1 rows into the shared {@link LambdaPolicy} and {@link UserPreference}: a model's own row
 * overrides the tenant's `*` row field by field, which overrides the built-in defaults (range [0, 1], explicit λ
 * allowed, reject out of range, no default preset).
 */
import {
  DEFAULT_LAMBDA_RANGE,
  type LambdaPolicy,
  type LambdaPreset,
  type LambdaRange,
  type UserPreference,
} from '../../../shared/src/lambda-policy.ts';
import { samplingDefaultsSchema, type SamplingDefaults } from '../../../shared/src/sampling-defaults.ts';
import type { PolicyRow } from '../db/policies.ts';
import type { RequestContextRows } from '../db/request-context.ts';

function specificFirst<T extends { model_id: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.model_id === '*' ? 1 : 0) - (b.model_id === '*' ? 1 : 0));
}

function firstDefined<T>(values: (T | null | undefined)[]): T | undefined {
  for (const v of values) if (v !== null && v !== undefined) return v;
  return undefined;
}

function parseSampling(json: string): SamplingDefaults {
  try {
    const r = samplingDefaultsSchema.safeParse(JSON.parse(json));
    return r.success ? r.data : {};
  } catch {
    return {};
  }
}

/** The effective policy for the request's model (rows must come from `loadRequestContext`). */
export function buildPolicy(rows: RequestContextRows): LambdaPolicy {
  const policies = specificFirst(rows.policies);
  const presets: Record<string, LambdaPreset> = {};
  for (const p of [...rows.presets].sort((a, b) => (a.model_id === '*' ? -1 : 0) - (b.model_id === '*' ? -1 : 0))) {
    presets[p.name] = { lambda: p.lambda, sampling: parseSampling(p.sampling) };
  }
  const allow = firstDefined(policies.map((p) => p.allow_explicit));
  return {
    range: {
      min: firstDefined(policies.map((p) => p.min_lambda)) ?? DEFAULT_LAMBDA_RANGE.min,
      max: firstDefined(policies.map((p) => p.max_lambda)) ?? DEFAULT_LAMBDA_RANGE.max,
    },
    presets,
    defaultPreset: firstDefined(policies.map((p) => p.default_preset)) ?? null,
    allowExplicit: allow === undefined ? true : allow === 1,
    outOfRange: firstDefined(policies.map((p) => p.out_of_range)) ?? 'reject',
    modelDefaultLambda: rows.model?.default_lambda ?? 1,
  };
}

/** The user's preference for this model (a model-specific row wins over `*`), or null. */
export function buildPreference(rows: RequestContextRows): UserPreference | null {
  const pref = specificFirst(rows.preferences)[0];
  return pref ? { lambda: pref.lambda, preset: pref.preset } : null;
}

/** The λ range bounds of a policy row (the rest of a row does not shape the range). */
export type RangeRow = Pick<PolicyRow, 'model_id' | 'min_lambda' | 'max_lambda'>;

/** The effective λ range of `modelId` (`*`: a model without a row of its own) under a tenant's policy rows. */
export function effectiveRange(rows: RangeRow[], modelId: string): LambdaRange {
  const chain = specificFirst(rows.filter((r) => r.model_id === modelId || r.model_id === '*'));
  return {
    min: firstDefined(chain.map((r) => r.min_lambda)) ?? DEFAULT_LAMBDA_RANGE.min,
    max: firstDefined(chain.map((r) => r.max_lambda)) ?? DEFAULT_LAMBDA_RANGE.max,
  };
}

/**
 * The first model (or `*`) whose effective range would be empty (min > max) under `rows`, or null. Every write of
 * a policy row — tenant-wide or per model, put or delete, in any order — is checked with this before it is stored.
 */
export function findEmptyRange(rows: RangeRow[]): { model: string; range: LambdaRange } | null {
  for (const model of ['*', ...rows.map((r) => r.model_id).filter((m) => m !== '*')]) {
    const range = effectiveRange(rows, model);
    if (range.min > range.max) return { model, range };
  }
  return null;
}
