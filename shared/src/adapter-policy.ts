/**
 * A tenant's policy for the named adapters of a model (issue 18, the edge): which adapters it may use (an
 * allow-list; absent = every adapter) and each adapter's own λ bounds, which override the tenant's general λ range
 * bound by bound. Checked by the edge before anything is charged or stored:
 *
 *   - a forbidden adapter is a 403 `permission_error` (`adapter_not_allowed`) naming the field: `adapter`, or
 *     `mix.<name>`; a request naming no adapter runs on the model's default adapter (the catalogue's first), which
 *     the allow-list covers too (param `adapter`) when the catalogue lists the model's adapters;
 *   - a λ outside its adapter's bounds gets what a λ outside the general range gets today: an explicit λ is a 400
 *     `lambda_out_of_range` (or clamped, as the policy says) naming the field, a preset's λ is clamped.
 */
import type { AdapterMix } from './adapter-mix.ts';
import { permissionDenied, type ApiError } from './errors.ts';
import type { LambdaPolicy, LambdaRange } from './lambda-policy.ts';

/** The adapter half of a tenant's policy for one model (merged by the edge from its `*` and per-model rows). */
export interface AdapterPolicy {
  /** The adapters the tenant may use; null = all of them. */
  allowed: readonly string[] | null;
  /** Each adapter's own λ bounds; a missing bound (or adapter) takes the general range's. */
  ranges: Record<string, Partial<LambdaRange>>;
  /** The adapter a request naming none runs on (the catalogue's first), or null when the edge does not know it. */
  defaultAdapter: string | null;
}

/** The policy of a tenant without adapter rules: every adapter allowed, the general range for each. */
export const OPEN_ADAPTER_POLICY: AdapterPolicy = { allowed: null, ranges: {}, defaultAdapter: null };

/** The λ range `adapter` runs in under `policy` (null: no named adapter, the general range). */
export function adapterRange(policy: Pick<LambdaPolicy, 'range' | 'adapters'>, adapter: string | null): LambdaRange {
  const own = adapter === null ? undefined : policy.adapters?.ranges[adapter];
  return { min: own?.min ?? policy.range.min, max: own?.max ?? policy.range.max };
}

/** `policy` with the range of `adapter` in place of its general range. */
export function policyForAdapter(policy: LambdaPolicy, adapter: string | null): LambdaPolicy {
  return { ...policy, range: adapterRange(policy, adapter) };
}

/**
 * A 403 when the tenant may not use `adapter` (param `param`), else null. `how` says where the name came from in
 * the message: the request, a preset, or the model's default.
 */
export function adapterNotAllowed(
  policy: LambdaPolicy,
  adapter: string,
  param: string,
  how: 'request' | { preset: string } | 'default',
): ApiError | null {
  const allowed = policy.adapters?.allowed ?? null;
  if (allowed === null || allowed.includes(adapter)) return null;
  const which =
    how === 'request'
      ? `adapter "${adapter}"`
      : how === 'default'
        ? `this model's default adapter "${adapter}" (a request naming no adapter runs on it)`
        : `adapter "${adapter}" (named by preset "${how.preset}")`;
  const may = allowed.length ? `it may use ${allowed.map((a) => `"${a}"`).join(', ')}` : 'it may use no named adapter';
  return permissionDenied(
    `this API key may not use ${which}; ${may} — send \`adapter\` or \`mix\` naming those, or ask your admin`,
    'adapter_not_allowed',
    param,
  );
}

/** The first adapter of `mix` the tenant may not use, as a 403 naming `mix.<name>`, else null. */
export function mixNotAllowed(policy: LambdaPolicy, mix: AdapterMix, how: 'request' | { preset: string }): ApiError | null {
  for (const name of Object.keys(mix)) {
    const err = adapterNotAllowed(policy, name, `mix.${name}`, how);
    if (err) return err;
  }
  return null;
}

/** A preset's mix with each λ clamped into its adapter's range (admin-set values are clamped, never rejected). */
export function clampPresetMix(policy: LambdaPolicy, mix: AdapterMix): { mix: AdapterMix; clamped: boolean } {
  const out: AdapterMix = {};
  let clamped = false;
  for (const [name, lambda] of Object.entries(mix)) {
    const { min, max } = adapterRange(policy, name);
    out[name] = Math.min(max, Math.max(min, lambda));
    clamped ||= out[name] !== lambda;
  }
  return { mix: out, clamped };
}
