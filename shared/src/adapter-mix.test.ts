import { describe, expect, it } from 'vitest';
import { checkAdapterName, checkMix, checkMixFor, mixKey, requestedMix } from './adapter-mix.ts';
import { buildBackendRequest, type BackendRequest } from './backend-request.ts';
import { ApiError } from './errors.ts';
import type { LambdaPolicy } from './lambda-policy.ts';
import { readRequest } from './parse-request.ts';

const model = { id: 'demo', adapters: ['concise', 'safe', 'style'], range: [-1, 2] as const };

describe('adapter and mix fields', () => {
  it('accepts adapter names and mixes, refuses the rest with what was sent', () => {
    expect(checkAdapterName('concise')).toEqual({ ok: true, value: 'concise' });
    expect(checkAdapterName('Concise')).toMatchObject({ ok: false, message: expect.stringMatching(/lower-case.*"Concise"/) });
    expect(checkAdapterName(3)).toMatchObject({ ok: false, message: 'must be an adapter name (string), got 3' });
    expect(checkMix({ concise: 0.7, safe: -0.5 })).toEqual({ ok: true, value: { concise: 0.7, safe: -0.5 } });
    expect(checkMix({})).toMatchObject({ ok: false, message: 'must name at least one adapter' });
    expect(checkMix([0.5])).toMatchObject({ ok: false, message: expect.stringMatching(/got an array/) });
    expect(checkMix({ concise: '0.7' })).toMatchObject({
      ok: false,
      path: ['concise'],
      message: expect.stringMatching(/string "0.7"/),
    });
    expect(checkMix({ concise: Number.NaN })).toMatchObject({ ok: false, path: ['concise'] });
    expect(checkMix({ 'bad name': 1 })).toMatchObject({ ok: false, path: ['bad name'] });
    expect(checkMix(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`a${i}`, 1])))).toMatchObject({
      ok: false,
      message: 'may name at most 8 adapters, got 9',
    });
  });

  it('folds adapter + lambda into a mix; mix with adapter or λ is a 400 naming the field', () => {
    expect(requestedMix({ adapter: 'safe', lambda: 0.4 }, 'lambda', 0.5)).toEqual({ safe: 0.4 });
    expect(requestedMix({ adapter: 'safe' }, null, 0.5)).toEqual({ safe: 0.5 });
    expect(requestedMix({ mix: { safe: 1, concise: 0.2 } }, null, 0.5)).toEqual({ safe: 1, concise: 0.2 });
    expect(requestedMix({ lambda: 0.3 }, 'lambda', 0.5)).toBeNull();
    const both = requestedMix({ mix: { safe: 1 }, adapter: 'safe' }, null, 0.5) as ApiError;
    expect(both).toBeInstanceOf(ApiError);
    expect(both.toBody()).toEqual({
      error: {
        message: 'send either `mix` or `adapter` (with `lambda`), not both',
        type: 'invalid_request_error',
        param: 'adapter',
        code: 'conflicting_parameters',
      },
    });
    expect((requestedMix({ mix: { safe: 1 }, lambda: 1 }, 'control', 0.5) as ApiError).param).toBe('control');
  });

  it('checks a mix against the model: unknown adapter and λ out of range are 400s naming the param', () => {
    expect(checkMixFor({ concise: 0.7, safe: 2 }, model, { kind: 'mix' })).toBeNull();
    const unknown = checkMixFor({ concise: 0.7, brief: 0.5 }, model, { kind: 'mix' })!;
    expect(unknown.status).toBe(400);
    expect(unknown.toBody().error).toEqual({
      message: 'model "demo" has no adapter "brief"; its adapters are "concise", "safe", "style"',
      type: 'invalid_request_error',
      param: 'mix.brief',
      code: 'unknown_adapter',
    });
    expect(checkMixFor({ brief: 0.5 }, model, { kind: 'adapter', lambdaField: 'lambda' })!.param).toBe('adapter');
    const far = checkMixFor({ safe: 2.5 }, model, { kind: 'mix' })!;
    expect(far.toBody().error).toMatchObject({ param: 'mix.safe', code: 'lambda_out_of_range' });
    expect(far.message).toBe('`mix.safe` must be in [-1, 2] for model "demo", got 2.5');
    expect(checkMixFor({ safe: -3 }, model, { kind: 'adapter', lambdaField: 'control' })!.param).toBe('control');
  });

  it('mixKey is canonical: order and zero λ do not change it', () => {
    expect(mixKey({ safe: 0.5, concise: 0.7 })).toBe(mixKey({ concise: 0.7, safe: 0.5, style: 0 }));
    expect(mixKey({ safe: 0.5 })).not.toBe(mixKey({ safe: 0.6 }));
  });
});

describe('a mix under the tenant policy (edge)', () => {
  const policy: LambdaPolicy = {
    range: { min: 0, max: 1 },
    presets: {},
    defaultPreset: null,
    allowExplicit: true,
    outOfRange: 'reject',
    modelDefaultLambda: 0.5,
  };
  const build = (body: object, p: LambdaPolicy) => {
    const parsed = readRequest('completions', { model: 'm', prompt: 'x', ...body });
    if (parsed instanceof ApiError) throw parsed;
    return buildBackendRequest('completions', parsed, p, null);
  };

  it('bounds each λ like an explicit λ: rejected or clamped per the policy, refused when explicit λ is not allowed', () => {
    const ok = build({ mix: { concise: 0.7, safe: 1 } }, policy) as BackendRequest<'completions'>;
    expect(ok.body.mix).toEqual({ concise: 0.7, safe: 1 });
    expect('lambda' in ok.body).toBe(false);
    const far = build({ mix: { concise: 0.7, safe: 1.5 } }, policy) as ApiError;
    expect(far.toBody().error).toMatchObject({ param: 'mix.safe', code: 'lambda_out_of_range' });
    const clamped = build(
      { mix: { safe: 1.5, concise: -2 } },
      { ...policy, outOfRange: 'clamp' },
    ) as BackendRequest<'completions'>;
    expect(clamped.body.mix).toEqual({ safe: 1, concise: 0 });
    expect(clamped.outcome.clamped).toBe(true);
    const denied = build({ mix: { safe: 0.5 } }, { ...policy, allowExplicit: false }) as ApiError;
    expect(denied.status).toBe(403);
    expect(denied.toBody().error).toMatchObject({ param: 'mix', code: 'lambda_not_allowed' });
  });
});
