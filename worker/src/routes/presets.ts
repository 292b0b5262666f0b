/**
 * `GET /v1/presets?model=<id>`: what the caller's tenant may do with λ on one model — the allowed range, whether
 * an explicit λ is allowed, the default, and the presets (with the λ each one runs at after clamping). For a model
 * whose catalogue entry lists named adapters, also each adapter: whether the tenant may use it and its λ range.
 * The playground reads it to build its slider and adapter controls; any client may use it to show the choices it
 * can send.
 */
import type { Handler } from 'hono';
import { invalidRequest } from '../../../shared/src/errors.ts';
import { adapterRange, clampPresetMix, policyForAdapter } from '../../../shared/src/adapter-policy.ts';
import { clampLambda, resolveLambda, type LambdaPolicy, type LambdaPreset } from '../../../shared/src/lambda-policy.ts';
import type { AdapterInfo, PresetInfo, PresetsResponse } from '../../../shared/src/presets-response.ts';
import type { AppEnv } from '../app-env.ts';
import { loadRequestContext, modelNotFound } from '../db/request-context.ts';
import { buildPolicy, parseAdapterList } from '../policy/build-policy.ts';

const MODEL_ID = /^.{1,256}$/su;

function presetInfo(policy: LambdaPolicy, name: string, p: LambdaPreset): PresetInfo {
  const lambda = clampLambda(p.lambda, adapterRange(policy, p.adapter ?? policy.adapters?.defaultAdapter ?? null));
  const mix = p.mix === undefined ? undefined : clampPresetMix(policy, p.mix);
  return {
    name,
    lambda,
    clamped: lambda !== p.lambda || (mix?.clamped ?? false),
    sampling: p.sampling,
    ...(p.adapter === undefined ? {} : { adapter: p.adapter }),
    ...(mix === undefined ? {} : { mix: mix.mix }),
  };
}

function adapterInfo(policy: LambdaPolicy, names: string[]): AdapterInfo[] {
  const allowed = policy.adapters?.allowed ?? null;
  return names.map((name) => ({
    name,
    allowed: allowed === null || allowed.includes(name),
    lambda_range: adapterRange(policy, name),
  }));
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
  // (the default preset's adapter, else the model's default adapter, gives the range)
  const first = resolveLambda(policy, {});
  if (first instanceof Error) throw first;
  const adapter = (first.preset === null ? undefined : policy.presets[first.preset]?.adapter) ?? null;
  const fallback = resolveLambda(policyForAdapter(policy, adapter ?? policy.adapters?.defaultAdapter ?? null), {});
  if (fallback instanceof Error) throw fallback;
  const adapters = parseAdapterList(rows.model.adapters);
  const body: PresetsResponse = {
    object: 'presets',
    model,
    lambda_range: { ...policy.range },
    allow_explicit_lambda: policy.allowExplicit,
    out_of_range: policy.outOfRange,
    default_preset: fallback.preset,
    default_lambda: fallback.lambda,
    ...(adapters === undefined ? {} : { adapters: adapterInfo(policy, adapters) }),
    data: Object.entries(policy.presets)
      .map(([name, p]) => presetInfo(policy, name, p))
      .sort((a, b) => b.lambda - a.lambda || a.name.localeCompare(b.name)),
  };
  return c.json(body);
};
