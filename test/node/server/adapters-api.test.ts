/**
 * The backend's per-request adapter fields (shared/src/adapter-mix.ts): `adapter` with `lambda`, and `mix`, over
 * real HTTP on a model of three named adapters and on a model of one; OpenAI-format 400s naming the param.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAdapter } from '../../../gpu-backend/src/make/adapters.ts';
import { perturbCheckpoint } from '../../../gpu-backend/src/make/synthetic.ts';
import type { RunningBackend } from '../../../gpu-backend/src/server/serve.ts';
import { catalogueRow, fetchServedModels } from '../../../scripts/lib/catalogue.ts';
import { startTestBackend, TEST_SECRET } from '../helpers/backend.ts';
import { tinyInra, tinyModel } from '../helpers/engine.ts';
import { errorOf, send } from '../helpers/http.ts';
import { cleanupTempDirs, tempDir, testSeed } from '../helpers/models.ts';

const seed = testSeed();
let backend: RunningBackend;

beforeAll(async () => {
  const work = tempDir();
  addAdapter(tinyModel(seed), join(work, '1'), 'concise');
  addAdapter(join(work, '1'), join(work, '2'), 'safe');
  addAdapter(join(work, '2'), join(work, '3'), 'style');
  const multi = join(work, 'multi');
  perturbCheckpoint(join(work, '3'), multi, (n) => /^model\.layers\.[012]\./.test(n), seed + 1, 0.08);
  const common = { mode: 'inra', default_lambda: 0.5, lambda_range: [-1, 2], max_context: 256 };
  backend = await startTestBackend([
    { id: 'multi', model: multi, ...common },
    { id: 'one', model: tinyInra(seed + 2), ...common },
  ]);
}, 180_000);
afterAll(async () => {
  await backend?.stop();
  cleanupTempDirs();
});

const complete = (body: Record<string, unknown>) =>
  send(backend.url, '/v1/completions', { prompt: [5, 9, 13, 21, 7], max_tokens: 5, temperature: 0, ...body });
const textOf = async (res: Response) => {
  expect(res.status).toBe(200);
  return ((await res.json()) as { choices: { text: string }[] }).choices[0].text;
};

describe(`named adapters per request (seed ${seed})`, () => {
  it('adapter + lambda and the same one-adapter mix give the same text; on a model of one adapter its name is λ on it', async () => {
    const a = await textOf(await complete({ model: 'multi', adapter: 'safe', lambda: 0.4 }));
    // usage counts each adapter's branch
    const withUsage = await complete({ model: 'multi', mix: { concise: 0.7, style: -0.5 } });
    const usage = ((await withUsage.json()) as { usage: { completion_tokens: number; realign: Record<string, unknown> } }).usage;
    expect(Object.keys(usage.realign.adapters as object)).toEqual(['concise', 'style']);
    // and the mix it ran (the edge keeps it in the usage row; the playground shows it)
    expect(usage.realign.mix).toEqual({ concise: 0.7, style: -0.5 });
    expect((usage.realign.adapters as Record<string, { completion_tokens: number }>).style.completion_tokens).toBe(
      usage.completion_tokens,
    );
    expect(await textOf(await complete({ model: 'multi', mix: { safe: 0.4 } }))).toBe(a);
    // a plain λ goes to the first adapter
    expect(await textOf(await complete({ model: 'multi', lambda: 1.5 }))).toBe(
      await textOf(await complete({ model: 'multi', mix: { concise: 1.5 } })),
    );
    // rows of different mixes in one batch: each request's text is what it gets alone
    const mixes = [{ concise: 0.7, safe: 0.5 }, { style: 2 }, { safe: -1, style: 1 }];
    const alone = [];
    for (const mix of mixes) alone.push(await textOf(await complete({ model: 'multi', mix })));
    const together = await Promise.all(mixes.map(async (mix) => textOf(await complete({ model: 'multi', mix }))));
    expect(together).toEqual(alone);
    expect(await textOf(await complete({ model: 'one', adapter: 'aligned', lambda: 0.3 }))).toBe(
      await textOf(await complete({ model: 'one', lambda: 0.3 })),
    );
  });

  it('a request on a mix says it in x-realign-mix instead of a single x-realign-lambda (streamed too); logits say both', async () => {
    const heads = async (res: Response) => {
      await res.body?.cancel();
      return [res.status, res.headers.get('x-realign-lambda'), res.headers.get('x-realign-mix')];
    };
    expect(await heads(await complete({ model: 'multi', mix: { style: 2, concise: -0.5 } }))).toEqual([
      200,
      null,
      'style=2,concise=-0.5',
    ]);
    expect(await heads(await complete({ model: 'multi', mix: { safe: 0.25 }, stream: true }))).toEqual([200, null, 'safe=0.25']);
    expect(await heads(await complete({ model: 'multi', adapter: 'safe', lambda: 0.4 }))).toEqual([200, '0.4', null]);
    // on a model of one adapter a mix is its λ, and still a mix it was asked for
    expect(await heads(await complete({ model: 'one', mix: { aligned: 0.3 } }))).toEqual([200, null, 'aligned=0.3']);
    const logits = await send(backend.url, '/v1/logits', {
      model: 'multi',
      input_ids: [4, 8, 15],
      lambdas: [0, 0.5],
      mix: { concise: 0.7, safe: 0.5 },
    });
    expect(await heads(logits)).toEqual([200, '0,0.5', 'concise=0.7,safe=0.5']);
  });

  it("/v1/models lists each model's named adapters (the first is the default)", async () => {
    const res = await send(backend.url, '/v1/models/multi');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { realign: { adapters?: string[] } }).realign.adapters).toEqual(['concise', 'safe', 'style']);
  });

  it("the local system's catalogue rows repeat each model's adapters and context from the backend's /v1/models", async () => {
    // what scripts/lib/system.ts PUTs to /admin/models/:id: read with the edge's signature, as it does
    const served = await fetchServedModels(backend.url, TEST_SECRET);
    const rowOf = (id: string) =>
      catalogueRow(
        id,
        0.5,
        served.filter((s) => s.id === id),
      );
    expect(rowOf('multi')).toEqual({ default_lambda: 0.5, context_length: 256, adapters: ['concise', 'safe', 'style'] });
    expect(rowOf('one')).toEqual({ default_lambda: 0.5, context_length: 256, adapters: ['aligned'] });
    // a model no backend serves keeps its default λ alone; of several backends, the smallest context counts
    expect(rowOf('absent')).toEqual({ default_lambda: 0.5 });
    const multi = served.find((s) => s.id === 'multi')!;
    expect(catalogueRow('multi', 1, [multi, { ...multi, maxContext: 100 }]).context_length).toBe(100);
    // backends naming different adapters for one model: the edge could not tell a request's default adapter
    expect(() => catalogueRow('multi', 1, [multi, { ...multi, adapters: ['safe'] }])).toThrow(/different adapters/);
  });

  it('bad adapters and mixes are 400s in OpenAI format naming the param', async () => {
    const cases: [Record<string, unknown>, string, string | null, RegExp][] = [
      [
        { model: 'multi', mix: { concise: 0.5, brief: 1 } },
        'mix.brief',
        'unknown_adapter',
        /no adapter "brief"; its adapters are "concise", "safe", "style"/,
      ],
      [{ model: 'multi', adapter: 'brief', lambda: 0.5 }, 'adapter', 'unknown_adapter', /no adapter "brief"/],
      [{ model: 'multi', mix: { safe: 2.5 } }, 'mix.safe', 'lambda_out_of_range', /must be in \[-1, 2\]/],
      [{ model: 'multi', adapter: 'safe', lambda: -3 }, 'lambda', 'lambda_out_of_range', /must be in \[-1, 2\]/],
      [{ model: 'multi', mix: { safe: 1 }, lambda: 0.5 }, 'lambda', null, /cannot be sent with `mix`/],
      [{ model: 'multi', mix: { safe: 1 }, adapter: 'safe' }, 'adapter', null, /cannot be sent with `mix`/],
      [{ model: 'multi', mix: { safe: '1' } }, 'mix.safe', null, /finite number/],
      [{ model: 'multi', mix: {} }, 'mix', null, /at least one adapter/],
      [{ model: 'multi', adapter: 'Not A Name' }, 'adapter', null, /lower-case/],
      [{ model: 'one', adapter: 'concise', lambda: 0.5 }, 'adapter', 'unknown_adapter', /its adapters are "aligned"/],
    ];
    for (const [body, param, code, message] of cases) {
      const res = await complete(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = await errorOf(res);
      expect(err.type).toBe('invalid_request_error');
      expect(err.param, JSON.stringify(body)).toBe(param);
      if (code) expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    }
  });

  it("/v1/logits: λ values on an adapter, a mix, and every adapter's own branch", async () => {
    const res = await send(backend.url, '/v1/logits', {
      model: 'multi',
      input_ids: [4, 8, 15, 16, 23],
      lambdas: [0, 0.5],
      adapter: 'style',
      mix: { concise: 0.7, safe: 0.5 },
      include_branches: true,
      top_logprobs: 3,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      results: { lambda: number; mix?: Record<string, number>; positions: { top_logprobs: { logprob: number }[] }[] }[];
      branches: {
        aligned: unknown[];
        reference: { top_logprobs: { token_id: number; logprob: number }[] }[];
        adapters: Record<string, unknown[]>;
      };
    };
    expect(body.results.map((r) => r.mix ?? null)).toEqual([{ style: 0 }, { style: 0.5 }, { concise: 0.7, safe: 0.5 }]);
    expect(Object.keys(body.branches.adapters)).toEqual(['concise', 'safe', 'style']);
    // λ = 0 on any adapter is the reference branch
    expect(body.results[0].positions[0].top_logprobs).toEqual(body.branches.reference[0].top_logprobs);
  });
});
