/**
 * Turns a request's D1 rows into the shared {@link LambdaPolicy} and {@link UserPreference}: a model's own row
 * overrides the tenant's `*` row field by field, which overrides the built-in defaults (range [0, 1], explicit λ
 * allowed, reject out of range, no default preset, every adapter allowed). An adapter's own bounds merge bound by
 * bound the same way, and each one missing takes the merged general range's.
 */
import { checkAdapterName, checkMix, type AdapterMix } from '../../../shared/src/adapter-mix.ts';
import type { AdapterPolicy } from '../../../shared/src/adapter-policy.ts';
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

function parseJson(json: string | null): unknown {
  if (json === null) return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

/** A stored JSON array of adapter names (a model's adapters, an allow-list), or undefined when NULL or malformed. */
export function parseAdapterList(json: string | null): string[] | undefined {
  const v = parseJson(json);
  return Array.isArray(v) && v.every((n) => checkAdapterName(n).ok) ? (v as string[]) : undefined;
}

/** A stored mix, or undefined. */
export function parseMix(json: string | null): AdapterMix | undefined {
  const r = checkMix(parseJson(json));
  return r.ok ? r.value : undefined;
}

/** Stored adapter bounds: `{"name": {"min_lambda"?, "max_lambda"?}}` ({} when NULL or malformed). */
export function parseAdapterRanges(json: string | null): Record<string, { min_lambda?: number; max_lambda?: number }> {
  const v = parseJson(json);
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, { min_lambda?: number; max_lambda?: number }>)
    : {};
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
    const adapter = p.adapter ?? undefined;
    const mix = parseMix(p.mix);
    presets[p.name] = {
      lambda: p.lambda,
      sampling: parseSampling(p.sampling),
      ...(adapter ? { adapter } : {}),
      ...(mix ? { mix } : {}),
    };
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
    adapters: adapterPolicy(policies, rows.model?.adapters ?? null),
  };
}

/** Each adapter's own bounds over `rows` (most specific first), bound by bound; a bound none sets is left out. */
function adapterBoundsOf(rows: Pick<PolicyRow, 'adapter_ranges'>[]): Record<string, Partial<LambdaRange>> {
  const parsed = rows.map((r) => parseAdapterRanges(r.adapter_ranges));
  const out: Record<string, Partial<LambdaRange>> = {};
  for (const name of new Set(parsed.flatMap((r) => Object.keys(r)))) {
    const min = firstDefined(parsed.map((r) => (Object.hasOwn(r, name) ? r[name]!.min_lambda : undefined)));
    const max = firstDefined(parsed.map((r) => (Object.hasOwn(r, name) ? r[name]!.max_lambda : undefined)));
    out[name] = { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) };
  }
  return out;
}

function adapterPolicy(policies: PolicyRow[], modelAdapters: string | null): AdapterPolicy {
  return {
    allowed: firstDefined(policies.map((p) => parseAdapterList(p.allowed_adapters))) ?? null,
    ranges: adapterBoundsOf(policies),
    defaultAdapter: parseAdapterList(modelAdapters)?.[0] ?? null,
  };
}

/** The user's preference for this model (a model-specific row wins over `*`), or null. */
export function buildPreference(rows: RequestContextRows): UserPreference | null {
  const pref = specificFirst(rows.preferences)[0];
  return pref ? { lambda: pref.lambda, preset: pref.preset } : null;
}

/** The λ range bounds of a policy row (the rest of a row does not shape the range). */
export type RangeRow = Pick<PolicyRow, 'model_id' | 'min_lambda' | 'max_lambda' | 'adapter_ranges'>;

/**
 * The effective λ range of `modelId` (`*`: a model without a row of its own) under a tenant's policy rows; with
 * `adapter`, that adapter's (its own bounds over the general range).
 */
export function effectiveRange(rows: RangeRow[], modelId: string, adapter: string | null = null): LambdaRange {
  const chain = specificFirst(rows.filter((r) => r.model_id === modelId || r.model_id === '*'));
  const own = adapter === null ? {} : (adapterBoundsOf(chain)[adapter] ?? {});
  return {
    min: own.min ?? firstDefined(chain.map((r) => r.min_lambda)) ?? DEFAULT_LAMBDA_RANGE.min,
    max: own.max ?? firstDefined(chain.map((r) => r.max_lambda)) ?? DEFAULT_LAMBDA_RANGE.max,
  };
}

/**
 * The first model (or `*`) whose effective range — general, or of an adapter with bounds of its own — would be
 * empty (min > max) under `rows`, or null. Every write of a policy row — tenant-wide or per model, put or delete,
 * in any order — is checked with this before it is stored.
 */
export function findEmptyRange(rows: RangeRow[]): { model: string; adapter: string | null; range: LambdaRange } | null {
  for (const model of ['*', ...rows.map((r) => r.model_id).filter((m) => m !== '*')]) {
    const chain = rows.filter((r) => r.model_id === model || r.model_id === '*');
    for (const adapter of [null, ...Object.keys(adapterBoundsOf(chain))]) {
      const range = effectiveRange(rows, model, adapter);
      if (range.min > range.max) return { model, adapter, range };
    }
  }
  return null;
}
