import { beforeAll, describe, expect, it } from 'vitest';
import { makeTenant, type TenantOptions, type TestTenant } from './helpers/fixtures.ts';
import { admin, callWith, postJson } from './helpers/http.ts';
import { stubBackend, stubRequests, uniqueTag } from './helpers/stub.ts';

/**
 * The λ resolution table, checked through HTTP: every case sends a real request with a tenant's key, and
 * checks the answer's status, the `x-realign-lambda` / `x-realign-preset` headers, and — for accepted
 * requests — the λ and sampling fields the backend (stub) actually received.
 */

const PRESETS = {
  fast: { lambda: 1, sampling: { max_tokens: 64 } },
  balanced: { lambda: 0.5, sampling: {} },
  deep: { lambda: -0.5, sampling: { max_tokens: 4096, temperature: 0.6 } },
  wild: { lambda: 3, sampling: {} },
};

const CONFIGS: Record<
  string,
  TenantOptions & { users?: Record<string, Record<string, unknown>>; modelPolicy?: Record<string, unknown> }
> = {
  plain: { modelDefaultLambda: 0.7 },
  rich: {
    modelDefaultLambda: 0.9,
    policy: { min_lambda: -1, max_lambda: 1.2, out_of_range: 'reject', default_preset: 'balanced' },
    presets: PRESETS,
    users: { alice: { lambda: 0.25 }, bob: { preset: 'fast' }, carol: { preset: 'removed-later' } },
  },
  clamp: { policy: { min_lambda: -1, max_lambda: 1.2, out_of_range: 'clamp' }, presets: PRESETS },
  locked: { policy: { allow_explicit: false }, presets: PRESETS },
  modelOverride: {
    policy: { allow_explicit: true, min_lambda: 0, max_lambda: 2 },
    modelPolicy: { allow_explicit: false },
    presets: PRESETS,
  },
};

type Expected =
  | { status: 200; lambda: string; preset: string; source: string; clamped?: boolean; backend?: Record<string, unknown> }
  | { status: 400 | 403; code: string; param: string };

interface Case {
  name: string;
  config: keyof typeof CONFIGS;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  expect: Expected;
}

const CASES: Case[] = [
  {
    name: 'nothing set → model default',
    config: 'plain',
    body: {},
    expect: { status: 200, lambda: '0.7', preset: 'none', source: 'model_default', backend: { lambda: 0.7 } },
  },
  {
    name: 'explicit λ inside the default range [0, 1]',
    config: 'plain',
    body: { lambda: 0.3 },
    expect: { status: 200, lambda: '0.3', preset: 'none', source: 'explicit', backend: { lambda: 0.3 } },
  },
  {
    name: 'extrapolation is rejected by default',
    config: 'plain',
    body: { lambda: 1.5 },
    expect: { status: 400, code: 'lambda_out_of_range', param: 'lambda' },
  },
  {
    name: '`control` is read as λ',
    config: 'plain',
    body: { control: 0.4 },
    expect: { status: 200, lambda: '0.4', preset: 'none', source: 'explicit', backend: { lambda: 0.4 } },
  },
  {
    name: 'λ as a string is a 400 from the schema',
    config: 'plain',
    body: { lambda: 'Infinity' },
    expect: { status: 400, code: 'invalid_value', param: 'lambda' },
  },
  {
    name: 'tenant default preset',
    config: 'rich',
    body: {},
    expect: { status: 200, lambda: '0.5', preset: 'balanced', source: 'tenant_default', backend: { lambda: 0.5 } },
  },
  {
    name: 'reject: explicit λ above the range',
    config: 'rich',
    body: { lambda: 1.3 },
    expect: { status: 400, code: 'lambda_out_of_range', param: 'lambda' },
  },
  {
    name: 'reject: explicit λ below the range',
    config: 'rich',
    body: { lambda: -3 },
    expect: { status: 400, code: 'lambda_out_of_range', param: 'lambda' },
  },
  {
    name: 'explicit negative λ inside the widened range',
    config: 'rich',
    body: { lambda: -0.8 },
    expect: { status: 200, lambda: '-0.8', preset: 'none', source: 'explicit', backend: { lambda: -0.8 } },
  },
  {
    name: 'preset fills unset sampling fields',
    config: 'rich',
    body: { preset: 'deep' },
    expect: {
      status: 200,
      lambda: '-0.5',
      preset: 'deep',
      source: 'preset',
      backend: { lambda: -0.5, max_tokens: 4096, temperature: 0.6 },
    },
  },
  {
    name: "the client's own sampling fields win over the preset's",
    config: 'rich',
    body: { preset: 'deep', temperature: 0.2 },
    expect: {
      status: 200,
      lambda: '-0.5',
      preset: 'deep',
      source: 'preset',
      backend: { lambda: -0.5, max_tokens: 4096, temperature: 0.2 },
    },
  },
  {
    name: 'explicit λ with a preset: λ from the request, sampling from the preset',
    config: 'rich',
    body: { lambda: 0.1, preset: 'fast' },
    expect: { status: 200, lambda: '0.1', preset: 'fast', source: 'explicit', backend: { lambda: 0.1, max_tokens: 64 } },
  },
  {
    name: 'unknown preset',
    config: 'rich',
    body: { preset: 'nope' },
    expect: { status: 400, code: 'unknown_preset', param: 'preset' },
  },
  {
    name: 'a preset outside the range is clamped (admin value)',
    config: 'rich',
    body: { preset: 'wild' },
    expect: { status: 200, lambda: '1.2', preset: 'wild', source: 'preset', clamped: true, backend: { lambda: 1.2 } },
  },
  {
    name: 'user preference λ via `user`',
    config: 'rich',
    body: { user: 'alice' },
    expect: { status: 200, lambda: '0.25', preset: 'none', source: 'user', backend: { lambda: 0.25 } },
  },
  {
    name: 'user preference preset via x-realign-user',
    config: 'rich',
    body: {},
    headers: { 'x-realign-user': 'bob' },
    expect: { status: 200, lambda: '1', preset: 'fast', source: 'user', backend: { lambda: 1, max_tokens: 64 } },
  },
  {
    name: 'a stale user preset falls through to the tenant default',
    config: 'rich',
    body: { user: 'carol' },
    expect: { status: 200, lambda: '0.5', preset: 'balanced', source: 'tenant_default' },
  },
  {
    name: 'the preset field wins over the user preference',
    config: 'rich',
    body: { user: 'alice', preset: 'deep' },
    expect: { status: 200, lambda: '-0.5', preset: 'deep', source: 'preset' },
  },
  {
    name: 'clamp: explicit λ above the range',
    config: 'clamp',
    body: { lambda: 5 },
    expect: { status: 200, lambda: '1.2', preset: 'none', source: 'explicit', clamped: true, backend: { lambda: 1.2 } },
  },
  {
    name: 'clamp: explicit λ below the range',
    config: 'clamp',
    body: { lambda: -9 },
    expect: { status: 200, lambda: '-1', preset: 'none', source: 'explicit', clamped: true, backend: { lambda: -1 } },
  },
  {
    name: 'explicit λ forbidden',
    config: 'locked',
    body: { lambda: 0.5 },
    expect: { status: 403, code: 'lambda_not_allowed', param: 'lambda' },
  },
  {
    name: '`control` forbidden too (the error names the field the client wrote, as the backend does)',
    config: 'locked',
    body: { control: 0.5 },
    expect: { status: 403, code: 'lambda_not_allowed', param: 'control' },
  },
  {
    name: 'presets still allowed where explicit λ is forbidden',
    config: 'locked',
    body: { preset: 'balanced' },
    expect: { status: 200, lambda: '0.5', preset: 'balanced', source: 'preset' },
  },
  {
    name: "a model's own policy row overrides the tenant's `*` row",
    config: 'modelOverride',
    body: { lambda: 0.5 },
    expect: { status: 403, code: 'lambda_not_allowed', param: 'lambda' },
  },
];

describe('λ resolution through HTTP', () => {
  const tenants = new Map<string, TestTenant>();
  let backendTag: string;

  beforeAll(async () => {
    backendTag = uniqueTag('lambda');
    for (const [name, cfg] of Object.entries(CONFIGS)) {
      const t = await makeTenant(cfg);
      for (const [user, pref] of Object.entries(cfg.users ?? {}))
        await admin('PUT', `/tenants/${t.tenantId}/users/${user}/preferences`, pref);
      if (cfg.modelPolicy) await admin('PUT', `/tenants/${t.tenantId}/policies/${t.model}`, cfg.modelPolicy);
      tenants.set(name, t);
    }
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const t = tenants.get(c.config)!;
    const body = { model: t.model, messages: [{ role: 'user', content: c.name }], ...c.body };
    const backends = JSON.stringify([{ url: stubBackend('ok', backendTag) }]);
    const res = await callWith({ BACKENDS: backends }, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${t.key}`, 'content-type': 'application/json', ...c.headers },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { error?: { code: string; param: string } };
    expect(res.status, JSON.stringify(json)).toBe(c.expect.status);
    if (c.expect.status !== 200) {
      expect(json.error).toMatchObject({ code: c.expect.code, param: c.expect.param });
      return;
    }
    expect(res.headers.get('x-realign-lambda')).toBe(c.expect.lambda);
    expect(res.headers.get('x-realign-preset')).toBe(c.expect.preset);
    expect(res.headers.get('x-realign-lambda-source')).toBe(c.expect.source);
    expect(res.headers.get('x-realign-lambda-clamped')).toBe(c.expect.clamped ? 'true' : null);
    const seen = (await stubRequests(backendTag)).find((r) => (r.body.messages as { content: string }[])[0]!.content === c.name);
    expect(seen, 'the stub backend received the request').toBeDefined();
    expect(seen!.body).not.toHaveProperty('preset');
    expect(seen!.body).not.toHaveProperty('control');
    expect(seen!.body).not.toHaveProperty('user');
    if (c.expect.backend) expect(seen!.body).toMatchObject(c.expect.backend);
  });

  it('resolves every λ of a /v1/logits request under the policy', async () => {
    const t = tenants.get('clamp')!;
    const res = await postJson('/v1/logits', t.key, { model: t.model, prompt: 'x', lambdas: [0, 0.5, 2] });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-realign-lambda')).toBe('0,0.5,1.2');
    expect(res.headers.get('x-realign-cache')).toBe('BYPASS');
    const json = (await res.json()) as { lambdas: number[] };
    expect(json.lambdas).toEqual([0, 0.5, 1.2]);
    const rejected = await postJson('/v1/logits', tenants.get('rich')!.key, {
      model: tenants.get('rich')!.model,
      prompt: 'x',
      lambdas: [0, 7],
    });
    expect(rejected.status).toBe(400);
    expect(await rejected.json()).toMatchObject({ error: { code: 'lambda_out_of_range', param: 'lambdas[1]' } });
  });
});
