import { describe, expect, it } from 'vitest';
import { makeTenant } from './helpers/fixtures.ts';
import { admin, call } from './helpers/http.ts';

/** `GET /v1/presets?model=`: the calling tenant's λ range and presets for one model. */

function getPresets(key: string | null, model: string | null): Promise<Response> {
  const query = model === null ? '' : `?model=${encodeURIComponent(model)}`;
  return call(`/v1/presets${query}`, { headers: key === null ? {} : { authorization: `Bearer ${key}` } });
}

describe('GET /v1/presets', () => {
  it("lists the tenant's range, default and presets, with each preset's λ clamped into the range", async () => {
    const t = await makeTenant({
      modelDefaultLambda: 0.9,
      policy: { min_lambda: -1, max_lambda: 1.5, out_of_range: 'reject', default_preset: 'balanced' },
      presets: {
        fast: { lambda: 1, sampling: { max_tokens: 64 } },
        balanced: { lambda: 0.5 },
        deep: { lambda: -0.5 },
        wild: { lambda: 3 },
      },
    });
    const res = await getPresets(t.key, t.model);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      object: 'presets',
      model: t.model,
      lambda_range: { min: -1, max: 1.5 },
      allow_explicit_lambda: true,
      out_of_range: 'reject',
      default_preset: 'balanced',
      default_lambda: 0.5,
      data: [
        { name: 'wild', lambda: 1.5, clamped: true, sampling: {} },
        { name: 'fast', lambda: 1, clamped: false, sampling: { max_tokens: 64 } },
        { name: 'balanced', lambda: 0.5, clamped: false, sampling: {} },
        { name: 'deep', lambda: -0.5, clamped: false, sampling: {} },
      ],
    });
  });

  it("without policy rows: the built-in range [0, 1] and the model's default λ", async () => {
    const t = await makeTenant({ modelDefaultLambda: 0.7 });
    expect(await (await getPresets(t.key, t.model)).json()).toMatchObject({
      lambda_range: { min: 0, max: 1 },
      allow_explicit_lambda: true,
      default_preset: null,
      default_lambda: 0.7,
      data: [],
    });
  });

  it("a model's own policy and preset rows win over the tenant's `*` rows", async () => {
    const t = await makeTenant({ policy: { min_lambda: 0, max_lambda: 2 }, presets: { fast: { lambda: 1 } } });
    await admin('PUT', `/tenants/${t.tenantId}/policies/${t.model}`, { allow_explicit: false, max_lambda: 1.2 });
    await admin('PUT', `/tenants/${t.tenantId}/presets/fast`, { lambda: 0.8, model: t.model });
    expect(await (await getPresets(t.key, t.model)).json()).toMatchObject({
      lambda_range: { min: 0, max: 1.2 },
      allow_explicit_lambda: false,
      data: [{ name: 'fast', lambda: 0.8, clamped: false }],
    });
  });

  it("shows no other tenant's presets, and another tenant's model is a 404 as if it did not exist", async () => {
    const shared = `model-${crypto.randomUUID().slice(0, 8)}`;
    const a = await makeTenant({ model: shared });
    const b = await makeTenant({ model: shared, presets: { secret: { lambda: 0.2 } } });
    expect(((await (await getPresets(a.key, shared)).json()) as { data: unknown[] }).data).toEqual([]);
    expect(((await (await getPresets(b.key, shared)).json()) as { data: { name: string }[] }).data.map((p) => p.name)).toEqual([
      'secret',
    ]);
    const own = await makeTenant();
    const res = await getPresets(a.key, own.model);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'model_not_found', param: 'model' } });
  });

  it('needs a key and a model', async () => {
    const t = await makeTenant();
    const noKey = await getPresets(null, t.model);
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { code: 'missing_api_key' } });
    for (const model of [null, '', 'x'.repeat(257)]) {
      const res = await getPresets(t.key, model);
      expect(res.status, `model=${model}`).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'missing_model', param: 'model' } });
    }
  });
});
