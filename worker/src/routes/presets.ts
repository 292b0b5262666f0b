/**
 * `GET /v1/presets?model=<id>`: what the caller's tenant may do with λ on one model — the allowed range, whether
 * an explicit λ is allowed, the default, and the presets (with the λ each one runs at after clamping). The
 * playground reads it to build its slider; any client may use it to show the choices it can send.
 */
import type { Handler } from 'hono';
import { invalidRequest } from '../../../shared/src/errors.ts';
import { clampLambda, resolveLambda } from '../../../shared/src/lambda-policy.ts';
import type { SamplingDefaults } from '../../../shared/src/sampling-defaults.ts';
import type { AppEnv } from '../app-env.ts';
import { loadRequestContext, modelNotFound } from '../db/request-context.ts';
import { buildPolicy } from '../policy/build-policy.ts';

const MODEL_ID = /^.{1,256}$/su;

/** One preset as listed to a client. */
export interface PresetInfo {
  name: string;
  /** The λ a request with this preset runs at (the stored λ clamped into the range). */
  lambda: number;
  /** Whether the stored λ lies outside the range and was clamped. */
  clamped: boolean;
  /** Sampling defaults the preset fills into unset request fields. */
  sampling: SamplingDefaults;
}

/** The answer of `GET /v1/presets`. */
export interface PresetsResponse {
  object: 'presets';
  model: string;
  lambda_range: { min: number; max: number };
  allow_explicit_lambda: boolean;
  out_of_range: 'clamp' | 'reject';
  /** The tenant's default preset for this model, or null. */
  default_preset: string | null;
  /** The λ of a request that sets neither `lambda` nor `preset` (and has no stored user preference). */
  default_lambda: number;
  data: PresetInfo[];
}

/** Lists the tenant's λ range and presets for `?model=`. */
export const listPresetsHandler: Handler<AppEnv> = async function listPresets(c) {
  const model = c.req.query('model');
  if (model === undefined || !MODEL_ID.test(model)) {
    throw invalidRequest(
      'query parameter `model` is required (1–256 characters): GET /v1/presets?model=<id>; GET /v1/models lists yours',
      'model',
      'missing_model',
    );
  }
  const rows = await loadRequestContext(c.env, c.get('auth').tenantId, model, null);
  if (rows.model === null) throw modelNotFound(model);
  const policy = buildPolicy(rows);
  // with nothing sent, resolution cannot fail (only a named preset or an explicit λ can be refused)
  const fallback = resolveLambda(policy, {});
  if (fallback instanceof Error) throw fallback;
  const body: PresetsResponse = {
    object: 'presets',
    model,
    lambda_range: { ...policy.range },
    allow_explicit_lambda: policy.allowExplicit,
    out_of_range: policy.outOfRange,
    default_preset: fallback.preset,
    default_lambda: fallback.lambda,
    data: Object.entries(policy.presets)
      .map(([name, p]) => {
        const lambda = clampLambda(p.lambda, policy.range);
        return { name, lambda, clamped: lambda !== p.lambda, sampling: p.sampling };
      })
      .sort((a, b) => b.lambda - a.lambda || a.name.localeCompare(b.name)),
  };
  return c.json(body);
};
