import { describe, expect, it } from 'vitest';
import type { AdapterPolicy } from './adapter-policy.ts';
import { buildBackendRequest, type BackendRequest } from './backend-request.ts';
import { ApiError } from './errors.ts';
import type { LambdaPolicy } from './lambda-policy.ts';
import { readRequest, type RequestKind } from './parse-request.ts';

const adapters: AdapterPolicy = {
  allowed: ['concise', 'safe'],
  ranges: { safe: { max: 0.5 }, concise: { min: -1, max: 2 } },
  defaultAdapter: 'concise',
};
const policy: LambdaPolicy = {
  range: { min: 0, max: 1 },
  presets: {
    careful: { lambda: 0.9, sampling: { max_tokens: 7 }, adapter: 'safe' },
    blend: { lambda: 1, sampling: {}, mix: { concise: 3, safe: 0.4 } },
    styled: { lambda: 1, sampling: {}, adapter: 'style' },
    plain: { lambda: 0.25, sampling: {} },
    wide: { lambda: 5, sampling: {} },
  },
  defaultPreset: null,
  allowExplicit: true,
  outOfRange: 'reject',
  modelDefaultLambda: 0.6,
  adapters,
};

function build(body: object, p: LambdaPolicy = policy, kind: RequestKind = 'completions') {
  const parsed = readRequest(kind, { model: 'm', prompt: 'x', ...body });
  if (parsed instanceof ApiError) throw parsed;
  return buildBackendRequest(kind, parsed, p, null);
}

const errorOf = (r: unknown) => (r as ApiError).toBody().error;
const bodyOf = (r: unknown) => (r as BackendRequest<'completions'>).body as Record<string, unknown>;

describe('adapter policy at the edge', () => {
  it('a forbidden adapter is a 403 naming the field: adapter, mix.<name>, or the default adapter', () => {
    expect((build({ adapter: 'style', lambda: 0.5 }) as ApiError).status).toBe(403);
    expect(errorOf(build({ adapter: 'style', lambda: 0.5 }))).toMatchObject({
      type: 'permission_error',
      code: 'adapter_not_allowed',
      param: 'adapter',
    });
    expect(errorOf(build({ mix: { safe: 0.2, style: 0.3 } }))).toMatchObject({ code: 'adapter_not_allowed', param: 'mix.style' });
    const noDefault = build({ lambda: 0.5 }, { ...policy, adapters: { ...adapters, allowed: ['safe'] } });
    expect(errorOf(noDefault)).toMatchObject({ code: 'adapter_not_allowed', param: 'adapter' });
    expect((noDefault as ApiError).message).toMatch(/default adapter "concise"/);
    // no allow-list: every adapter
    expect(
      bodyOf(build({ adapter: 'style', lambda: 0.5 }, { ...policy, adapters: { ...adapters, allowed: null } })),
    ).toMatchObject({
      adapter: 'style',
      lambda: 0.5,
    });
  });

  it("an adapter's own bounds replace the general range, for explicit λ, mixes and logits", () => {
    // concise widens the range to [-1, 2], safe narrows its max to 0.5
    expect(bodyOf(build({ adapter: 'concise', lambda: 1.8 }))).toMatchObject({ adapter: 'concise', lambda: 1.8 });
    expect(bodyOf(build({ lambda: 1.8 }))).toMatchObject({ lambda: 1.8 }); // the default adapter is concise
    expect(errorOf(build({ adapter: 'safe', lambda: 0.7 }))).toMatchObject({ code: 'lambda_out_of_range', param: 'lambda' });
    expect(errorOf(build({ adapter: 'safe', control: 0.7 }))).toMatchObject({ code: 'lambda_out_of_range', param: 'control' });
    expect(errorOf(build({ mix: { concise: 1.8, safe: 0.7 } }))).toMatchObject({
      code: 'lambda_out_of_range',
      param: 'mix.safe',
    });
    expect(bodyOf(build({ mix: { concise: 1.8, safe: 0.5 } }))).toMatchObject({ mix: { concise: 1.8, safe: 0.5 } });
    const clamp = build({ adapter: 'safe', lambda: 0.9 }, { ...policy, outOfRange: 'clamp' }) as BackendRequest;
    expect(clamp.body).toMatchObject({ lambda: 0.5 });
    expect(clamp.outcome.clamped).toBe(true);
    const logits = build({ adapter: 'safe', lambdas: [0, 0.9] }, policy, 'logits');
    expect(errorOf(logits)).toMatchObject({ code: 'lambda_out_of_range', param: 'lambdas[1]' });
    expect(errorOf(build({ adapter: 'style', lambdas: [0] }, policy, 'logits'))).toMatchObject({ param: 'adapter' });
    expect(errorOf(build({ lambdas: [0], mix: { style: 1 } }, policy, 'logits'))).toMatchObject({ param: 'mix.style' });
    expect(errorOf(build({ lambdas: [0], mix: { safe: 1 } }, policy, 'logits'))).toMatchObject({ param: 'mix.safe' });
  });

  it("a preset's adapter or mix obeys the same checks, and an explicit field beats it", () => {
    const careful = build({ preset: 'careful' }) as BackendRequest<'completions'>;
    // the preset's λ 0.9 is clamped into safe's [0, 0.5]; its sampling defaults still apply
    expect(careful.body).toMatchObject({ adapter: 'safe', lambda: 0.5, max_tokens: 7 });
    expect(careful.outcome).toMatchObject({ preset: 'careful', source: 'preset', clamped: true });
    expect(bodyOf(build({ preset: 'blend' }))).toMatchObject({ mix: { concise: 2, safe: 0.4 } });
    // clamped reports the mix's values (concise 3 → 2), not the unused single λ
    expect((build({ preset: 'blend' }) as BackendRequest).outcome.clamped).toBe(true);
    const inRange = build({ mix: { concise: 0.5 } }, { ...policy, defaultPreset: 'wide' }) as BackendRequest;
    expect(inRange.outcome.clamped).toBe(false);
    expect(bodyOf(build({ preset: 'blend' }))).not.toHaveProperty('lambda');
    expect(errorOf(build({ preset: 'styled' }))).toMatchObject({ code: 'adapter_not_allowed', param: 'adapter' });
    // explicit fields win: the request's adapter over the preset's, its λ over the preset's mix, its mix over all
    expect(bodyOf(build({ preset: 'careful', adapter: 'concise' }))).toMatchObject({ adapter: 'concise', lambda: 0.9 });
    expect(bodyOf(build({ preset: 'careful', lambda: 0.3 }))).toMatchObject({ adapter: 'safe', lambda: 0.3 });
    const overMix = bodyOf(build({ preset: 'blend', lambda: 0.3 }));
    expect(overMix).toMatchObject({ lambda: 0.3 });
    expect(overMix).not.toHaveProperty('mix');
    expect(bodyOf(build({ preset: 'careful', mix: { concise: 0.1 } }))).toEqual(
      expect.objectContaining({ mix: { concise: 0.1 }, max_tokens: 7 }),
    );
    // the tenant's default preset names an adapter too
    const byDefault = build({}, { ...policy, defaultPreset: 'careful' }) as BackendRequest<'completions'>;
    expect(byDefault.body).toMatchObject({ adapter: 'safe', lambda: 0.5 });
  });
});
