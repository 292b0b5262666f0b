/**
 * Several named InRa adapters over one base model (gpu-backend: multi-adapter graphs): which adapters a request uses
 * and with which λ. A request says it in one of two ways:
 *
 *   { "adapter": "concise", "lambda": 0.7 }          one adapter (today's λ blend, on that adapter)
 *   { "mix": { "concise": 0.7, "safe": 0.5 } }       several: z = z_ref + Σ λ_i·(z_i − z_ref)
 *
 * `mix` is exclusive with `adapter`, `lambda` and `control`. Without either form the request's λ applies to the
 * model's default adapter (its first), as on a model of one adapter. Each λ_i obeys the same range as a single λ.
 */
import { adapterRange } from './adapter-policy.ts';
import { ApiError, invalidRequest, permissionDenied } from './errors.ts';
import { describeValue, type CheckResult } from './fields.ts';
import type { LambdaPolicy } from './lambda-policy.ts';

/** λ per adapter name. */
export type AdapterMix = Record<string, number>;

/** What an adapter may be called (the same rule as the checkpoint's `realign_inra.adapters` names). */
export const ADAPTER_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** Most adapters one `mix` may name. */
export const MAX_MIX_ADAPTERS = 8;

/** `adapter`: an adapter name. */
export function checkAdapterName(value: unknown): CheckResult<string> {
  if (typeof value !== 'string') return { ok: false, message: `must be an adapter name (string), got ${describeValue(value)}` };
  if (!ADAPTER_NAME.test(value))
    return {
      ok: false,
      message: `must be 1–40 lower-case letters, digits, "_" or "-" (starting with a letter or digit), got ${describeValue(value)}`,
    };
  return { ok: true, value };
}

/** `mix`: an object of 1..MAX_MIX_ADAPTERS adapter names → finite λ. */
export function checkMix(value: unknown): CheckResult<AdapterMix> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, message: `must be an object mapping adapter names to λ values, got ${describeValue(value)}` };
  const entries = Object.entries(value);
  if (entries.length === 0) return { ok: false, message: 'must name at least one adapter' };
  if (entries.length > MAX_MIX_ADAPTERS)
    return { ok: false, message: `may name at most ${MAX_MIX_ADAPTERS} adapters, got ${entries.length}` };
  const out: AdapterMix = {};
  for (const [name, lambda] of entries) {
    const n = checkAdapterName(name);
    if (!n.ok) return { ok: false, message: `keys ${n.message}`, path: [name] };
    if (typeof lambda !== 'number' || !Number.isFinite(lambda))
      return { ok: false, message: `must be a finite number (λ), got ${describeValue(lambda)}`, path: [name] };
    out[name] = lambda;
  }
  return { ok: true, value: out };
}

/** The adapter fields of a request as parsed (λ already folded from `control`). */
export interface AdapterFields {
  adapter?: string;
  mix?: AdapterMix;
  lambda?: number;
}

/**
 * The mix a request asks for, or null when it names no adapter (its λ, or the model's default, then applies to the
 * model's default adapter). `lambdaField` is the field the client wrote λ in. Combining `mix` with `adapter` or λ is
 * a 400; `adapter` without λ takes the λ resolved for the request (`fallbackLambda`).
 */
export function requestedMix(
  f: AdapterFields,
  lambdaField: 'lambda' | 'control' | null,
  fallbackLambda: number,
): AdapterMix | null | ApiError {
  if (f.mix !== undefined) {
    if (f.adapter !== undefined)
      return invalidRequest('send either `mix` or `adapter` (with `lambda`), not both', 'adapter', 'conflicting_parameters');
    if (f.lambda !== undefined)
      return invalidRequest(
        `send either \`mix\` or \`${lambdaField ?? 'lambda'}\`, not both: the mix gives every adapter its λ`,
        lambdaField ?? 'lambda',
        'conflicting_parameters',
      );
    return f.mix;
  }
  if (f.adapter !== undefined) return { [f.adapter]: f.lambda ?? fallbackLambda };
  return null;
}

/** Where a mix's errors point: `mix.<name>`, or for the one-adapter form `adapter` (names) and the λ field (values). */
export type MixParam = { kind: 'mix' } | { kind: 'adapter'; lambdaField: 'lambda' | 'control' };

/**
 * Checks a mix against a model: every adapter is one of `adapters` (else 400 `unknown_adapter` naming the param and
 * the model's adapters) and every λ in `range` (else 400 `lambda_out_of_range`). Returns null when it is valid.
 */
export function checkMixFor(
  mix: AdapterMix,
  model: { id: string; adapters: readonly string[]; range: readonly [number, number] },
  where: MixParam,
): ApiError | null {
  const [lo, hi] = model.range;
  for (const [name, lambda] of Object.entries(mix)) {
    if (!model.adapters.includes(name)) {
      const has = model.adapters.length
        ? `its adapters are ${model.adapters.map((a) => `"${a}"`).join(', ')}`
        : 'it has no named adapters';
      return invalidRequest(
        `model "${model.id}" has no adapter "${name}"; ${has}`,
        where.kind === 'mix' ? `mix.${name}` : 'adapter',
        'unknown_adapter',
      );
    }
    if (lambda < lo || lambda > hi) {
      const param = where.kind === 'mix' ? `mix.${name}` : where.lambdaField;
      return invalidRequest(
        `\`${param}\` must be in [${lo}, ${hi}] for model "${model.id}", got ${lambda}`,
        param,
        'lambda_out_of_range',
      );
    }
  }
  return null;
}

/**
 * A mix under a tenant's λ policy (the edge): each λ_i is an explicit λ — refused when the policy allows none (403
 * `lambda_not_allowed`, param `mix`), and outside its adapter's range (the adapter's own bounds over the policy's
 * range, adapter-policy.ts) rejected (400 `lambda_out_of_range`, param `mix.<name>`) or clamped into it, as the
 * policy says. Returns the mix to send (clamped values) or the error.
 */
export function mixUnderPolicy(
  mix: AdapterMix,
  policy: Pick<LambdaPolicy, 'range' | 'allowExplicit' | 'outOfRange' | 'adapters'>,
): { mix: AdapterMix; clamped: boolean } | ApiError {
  if (!policy.allowExplicit)
    return permissionDenied(
      'this API key may not set λ values, and a `mix` sets one per adapter; send a `preset` instead, or ask your admin to allow explicit λ',
      'lambda_not_allowed',
      'mix',
    );
  const out: AdapterMix = {};
  let clamped = false;
  for (const [name, lambda] of Object.entries(mix)) {
    const { min, max } = adapterRange(policy, name);
    if (lambda >= min && lambda <= max) {
      out[name] = lambda;
      continue;
    }
    if (policy.outOfRange === 'reject')
      return invalidRequest(
        `\`mix.${name}\` must be in [${min}, ${max}] for this model, got ${lambda}`,
        `mix.${name}`,
        'lambda_out_of_range',
      );
    out[name] = Math.min(max, Math.max(min, lambda));
    clamped = true;
  }
  return { mix: out, clamped };
}

/** A canonical text of a mix (names sorted, zero λ dropped): equal mixes give equal keys (cache keys, usage rows). */
export function mixKey(mix: AdapterMix): string {
  return Object.keys(mix)
    .filter((k) => mix[k] !== 0)
    .sort()
    .map((k) => `${k}=${mix[k]}`)
    .join(',');
}
