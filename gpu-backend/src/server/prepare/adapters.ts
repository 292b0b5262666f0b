/**
 * A request's named adapters (shared/src/adapter-mix.ts) checked against the model: `adapter` with λ, or `mix`.
 * Unknown adapters and λ outside the model's hard range are 400s naming the param. On a model of several adapters
 * the job gets the mix; on a model of one, a mix of that adapter is its λ.
 */
import { checkMixFor, requestedMix, type AdapterMix } from '../../../../shared/src/adapter-mix.ts';
import { ApiError } from '../../../../shared/src/errors.ts';
import type { ServedModel } from '../registry.ts';

/** The model's adapter names (none for single and fusion models). */
function adaptersOf(model: ServedModel): readonly string[] {
  return model.engine.info.adapters ?? [];
}

/** The λ and mix a generation runs with (`lambda` already checked; `lambdaField` the field the client wrote it in). */
export function checkAdapters(
  model: ServedModel,
  req: { adapter?: string; mix?: AdapterMix; lambda?: number },
  lambdaField: 'lambda' | 'control' | null,
  lambda: number,
): { lambda: number; mix?: AdapterMix } {
  const mix = requestedMix(req, lambdaField, lambda);
  if (mix instanceof ApiError) throw mix;
  if (mix === null) return { lambda };
  return resolveMix(
    model,
    mix,
    req.mix !== undefined ? { kind: 'mix' } : { kind: 'adapter', lambdaField: lambdaField ?? 'lambda' },
  );
}

/** The blends of a logits request: its λ values on `adapter` (or the first adapter), then its `mix`. */
export function logitsMixes(
  model: ServedModel,
  req: { adapter?: string; mix?: AdapterMix },
  lambdas: number[],
): { lambdas: number[]; mixes: AdapterMix[] } | null {
  if (req.adapter === undefined && req.mix === undefined) return null;
  const out = { lambdas: [] as number[], mixes: [] as AdapterMix[] };
  for (const l of lambdas) {
    if (req.adapter === undefined) {
      out.lambdas.push(l);
      continue;
    }
    const r = resolveMix(model, { [req.adapter]: l }, { kind: 'adapter', lambdaField: 'lambda' });
    if (r.mix) out.mixes.push(r.mix);
    else out.lambdas.push(r.lambda);
  }
  if (req.mix !== undefined) {
    const r = resolveMix(model, req.mix, { kind: 'mix' });
    if (!r.mix)
      throw new ApiError(400, 'a mix on a model of one adapter is its λ: send it in `lambdas`', {
        type: 'invalid_request_error',
        param: 'mix',
        code: 'invalid_value',
      });
    out.mixes.push(r.mix);
  }
  return out;
}

function resolveMix(
  model: ServedModel,
  mix: AdapterMix,
  where: { kind: 'mix' } | { kind: 'adapter'; lambdaField: 'lambda' | 'control' },
): { lambda: number; mix?: AdapterMix } {
  const adapters = adaptersOf(model);
  const err = checkMixFor(mix, { id: model.config.id, adapters, range: model.config.lambda_range }, where);
  if (err) throw err;
  if (adapters.length > 1) return { lambda: Object.values(mix).reduce((a, b) => a + b, 0), mix };
  return { lambda: mix[adapters[0]] ?? 0 };
}
