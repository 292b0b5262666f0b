/** λ of a request checked against the model's hard range (the backend's own bound, beside the edge's policy). */
import { invalidRequest } from '../../../../shared/src/errors.ts';
import type { ServedModel } from '../registry.ts';

/** λ of a request: the request's, else the model's default; must lie in the model's hard range. */
export function checkLambda(model: ServedModel, lambda: number | undefined, param = 'lambda'): number {
  const m = model.config;
  const value = lambda ?? m.default_lambda;
  if (m.mode === 'single' && value !== 1 && lambda !== undefined) {
    throw invalidRequest(
      `model "${m.id}" serves a single checkpoint and has no λ; remove \`${param}\` or set it to 1`,
      param,
      'lambda_not_supported',
    );
  }
  const [lo, hi] = m.lambda_range;
  if (value < lo || value > hi) {
    throw invalidRequest(
      `\`${param}\` must be in [${lo}, ${hi}] for model "${m.id}", got ${value}`,
      param,
      'lambda_out_of_range',
    );
  }
  return m.mode === 'single' ? 1 : value;
}
