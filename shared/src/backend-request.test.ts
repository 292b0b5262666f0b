import { describe, expect, it } from 'vitest';
import { backendRequestHeaders, buildBackendRequest, lambdaFieldOf } from './backend-request.ts';
import { ApiError } from './errors.ts';
import { HEADERS } from './headers.ts';
import type { LambdaPolicy } from './lambda-policy.ts';
import { readRequest, type RequestKind } from './parse-request.ts';

const policy: LambdaPolicy = {
  range: { min: 0, max: 1 },
  presets: { deep: { lambda: 0.2, sampling: { temperature: 0.6, max_tokens: 64 } } },
  defaultPreset: null,
  allowExplicit: true,
  outOfRange: 'reject',
  modelDefaultLambda: 0.5,
};

function build<K extends RequestKind>(kind: K, body: object, p: LambdaPolicy = policy) {
  const parsed = readRequest(kind, body);
  if (parsed instanceof ApiError) throw parsed;
  return buildBackendRequest(kind, parsed, p, null);
}

const chat = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

describe('buildBackendRequest: what the edge sends a backend', () => {
  it('resolves λ, fills the preset defaults, drops preset and user, keeps the outcome', () => {
    const r = build('chat', { ...chat, preset: 'deep', user: 'u1', temperature: 0.9 });
    if (r instanceof ApiError) throw r;
    expect(r.body).toMatchObject({ lambda: 0.2, temperature: 0.9, max_tokens: 64 });
    expect(r.body).not.toHaveProperty('preset');
    expect(r.body).not.toHaveProperty('user');
    expect(r.outcome).toEqual({ lambdas: [0.2], preset: 'deep', source: 'preset', clamped: false });
    expect(r.lambdaField).toBeNull();
    expect(backendRequestHeaders(r)).toEqual({});
  });

  it('remembers that the client wrote `control`, sends it as a header and names it in the policy error', () => {
    const r = build('completions', { model: 'm', prompt: 'x', control: 0.7 });
    if (r instanceof ApiError) throw r;
    expect(r.body).toMatchObject({ lambda: 0.7 });
    expect(r.body).not.toHaveProperty('control');
    expect(backendRequestHeaders(r)).toEqual({ [HEADERS.lambdaField]: 'control' });
    const refused = build('completions', { model: 'm', prompt: 'x', control: 3 });
    expect(refused).toMatchObject({ status: 400, code: 'lambda_out_of_range', param: 'control' });
    expect((refused as ApiError).message).toMatch(/^`control` must be in \[0, 1\]/);
  });

  it('a logits request gets `lambdas`; a single `control` is named as sent, a list by index', () => {
    const one = build('logits', { model: 'm', prompt: 'x', control: 0.25 });
    if (one instanceof ApiError) throw one;
    expect(one.body.lambdas).toEqual([0.25]);
    expect(one.lambdaField).toBe('control');
    expect(build('logits', { model: 'm', prompt: 'x', control: 2 })).toMatchObject({ param: 'control' });
    expect(build('logits', { model: 'm', prompt: 'x', lambdas: [0, 2] })).toMatchObject({ param: 'lambdas[1]' });
  });

  it('the backend takes the field from the edge header, else from its own parse', () => {
    expect(lambdaFieldOf('control', 'lambda')).toBe('control');
    expect(lambdaFieldOf(undefined, 'control')).toBe('control');
    expect(lambdaFieldOf('bogus', null)).toBeNull();
  });
});
