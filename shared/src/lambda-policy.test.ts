import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { resolveLambda, resolveLambdaList, type LambdaInput, type LambdaPolicy } from './lambda-policy.ts';
import { applySamplingDefaults } from './sampling-defaults.ts';

const policy: LambdaPolicy = {
  range: { min: -1, max: 1.5 },
  presets: {
    fast: { lambda: 1, sampling: { max_tokens: 256 } },
    deep: { lambda: -0.5, sampling: { max_tokens: 4096, temperature: 0.6 } },
    wild: { lambda: 3, sampling: {} },
  },
  defaultPreset: 'fast',
  allowExplicit: true,
  outOfRange: 'reject',
  modelDefaultLambda: 0.25,
};

type Expect = { lambda: number; source: string; preset: string | null; clamped: boolean } | { status: number; code: string };

describe('resolveLambda', () => {
  const cases: Array<[string, Partial<LambdaPolicy>, LambdaInput, Expect]> = [
    ['explicit λ in range', {}, { lambda: 0.3 }, { lambda: 0.3, source: 'explicit', preset: null, clamped: false }],
    [
      'explicit λ wins over preset and user',
      {},
      { lambda: 0.3, preset: 'deep', userPreference: { lambda: 0.9, preset: null } },
      { lambda: 0.3, source: 'explicit', preset: 'deep', clamped: false },
    ],
    ['explicit λ out of range, reject', {}, { lambda: 2 }, { status: 400, code: 'lambda_out_of_range' }],
    [
      'explicit λ out of range, clamp',
      { outOfRange: 'clamp' },
      { lambda: 2 },
      { lambda: 1.5, source: 'explicit', preset: null, clamped: true },
    ],
    [
      'explicit λ below range, clamp',
      { outOfRange: 'clamp' },
      { lambda: -7 },
      { lambda: -1, source: 'explicit', preset: null, clamped: true },
    ],
    ['explicit λ forbidden', { allowExplicit: false }, { lambda: 0.5 }, { status: 403, code: 'lambda_not_allowed' }],
    ['unknown preset', {}, { preset: 'nope' }, { status: 400, code: 'unknown_preset' }],
    ['unknown preset even with explicit λ', {}, { lambda: 0.5, preset: 'nope' }, { status: 400, code: 'unknown_preset' }],
    ['preset field', {}, { preset: 'deep' }, { lambda: -0.5, source: 'preset', preset: 'deep', clamped: false }],
    [
      "an explicit preset beats the user's preference (λ or preset)",
      {},
      { preset: 'deep', userPreference: { lambda: 0.9, preset: 'fast' } },
      { lambda: -0.5, source: 'preset', preset: 'deep', clamped: false },
    ],
    [
      'preset outside range is clamped, not rejected',
      {},
      { preset: 'wild' },
      { lambda: 1.5, source: 'preset', preset: 'wild', clamped: true },
    ],
    [
      'user preference λ',
      {},
      { userPreference: { lambda: 0.8, preset: null } },
      { lambda: 0.8, source: 'user', preset: null, clamped: false },
    ],
    [
      'user preference preset',
      {},
      { userPreference: { lambda: null, preset: 'deep' } },
      { lambda: -0.5, source: 'user', preset: 'deep', clamped: false },
    ],
    [
      'stale user preset falls through to tenant default',
      {},
      { userPreference: { lambda: null, preset: 'gone' } },
      { lambda: 1, source: 'tenant_default', preset: 'fast', clamped: false },
    ],
    ['tenant default preset', {}, {}, { lambda: 1, source: 'tenant_default', preset: 'fast', clamped: false }],
    ['model default', { defaultPreset: null }, {}, { lambda: 0.25, source: 'model_default', preset: null, clamped: false }],
    [
      'stale tenant default falls to model default',
      { defaultPreset: 'gone' },
      {},
      { lambda: 0.25, source: 'model_default', preset: null, clamped: false },
    ],
    [
      'model default clamped into a narrow range',
      { defaultPreset: null, range: { min: 0.5, max: 1 } },
      {},
      { lambda: 0.5, source: 'model_default', preset: null, clamped: true },
    ],
    [
      'preset allowed where explicit λ is forbidden',
      { allowExplicit: false },
      { preset: 'deep' },
      { lambda: -0.5, source: 'preset', preset: 'deep', clamped: false },
    ],
    ['presets do not inherit from Object.prototype', {}, { preset: 'toString' }, { status: 400, code: 'unknown_preset' }],
  ];
  it.each(cases)('%s', (_name, override, input, expected) => {
    const r = resolveLambda({ ...policy, ...override }, input);
    if ('status' in expected) {
      expect(r).toBeInstanceOf(ApiError);
      expect((r as ApiError).status).toBe(expected.status);
      expect((r as ApiError).code).toBe(expected.code);
    } else {
      expect(r).not.toBeInstanceOf(ApiError);
      expect(r).toMatchObject(expected);
    }
  });

  it('returns the preset sampling defaults, which fill only unset fields', () => {
    const r = resolveLambda(policy, { preset: 'deep' });
    if (r instanceof ApiError) throw r;
    expect(r.sampling).toEqual({ max_tokens: 4096, temperature: 0.6 });
    expect(applySamplingDefaults({ temperature: 0 }, r.sampling)).toEqual({ temperature: 0, max_tokens: 4096 });
  });

  it('tells which presets exist when an unknown one is named', () => {
    const r = resolveLambda(policy, { preset: 'nope' }) as ApiError;
    expect(r.message).toContain('"fast", "deep", "wild"');
    expect(r.param).toBe('preset');
  });
});

describe('resolveLambdaList', () => {
  it('checks every listed λ and names the bad index', () => {
    const r = resolveLambdaList(policy, { lambdas: [0, 0.5, 9] }) as ApiError;
    expect(r).toBeInstanceOf(ApiError);
    expect(r.param).toBe('lambdas[2]');
    expect(r.message).toContain('`lambdas[2]` must be in [-1, 1.5]');
  });
  it('clamps listed values under a clamp policy', () => {
    expect(resolveLambdaList({ ...policy, outOfRange: 'clamp' }, { lambdas: [0, 9] })).toEqual({
      lambdas: [0, 1.5],
      preset: null,
      source: 'explicit',
      clamped: true,
    });
  });
  it('falls back to the single resolved λ without a list', () => {
    expect(resolveLambdaList(policy, { preset: 'deep' })).toEqual({
      lambdas: [-0.5],
      preset: 'deep',
      source: 'preset',
      clamped: false,
    });
  });
  it('forbids a list where explicit λ is not allowed', () => {
    expect((resolveLambdaList({ ...policy, allowExplicit: false }, { lambdas: [0] }) as ApiError).status).toBe(403);
  });
});
