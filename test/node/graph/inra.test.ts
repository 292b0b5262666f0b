import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { ReferenceModel, blend } from '../../../gpu-backend/src/reference/forward.ts';
import { argmax, decode, openGraph, prefill, randomTokens } from '../helpers/graphs.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';

afterAll(cleanupTempDirs);

describe.each(['qwen2', 'llama'] as const)('InRa graphs (%s)', (arch) => {
  const seed = testSeed();

  it(`an expanded checkpoint gives the base model's logits at λ ∈ {−1, 0, 0.3, 1, 2.5} within 1e-5 (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, seed });
    const expanded = join(tempDir(), 'expanded');
    expandCheckpoint(base, expanded, 1);
    const cfg = openCheckpoint(expanded).config;
    expect(cfg.numLayers).toBe(3);
    expect(cfg.adapterLayers).toBe(1);
    const plain = await openGraph('single', { model: base });
    const inra = await openGraph('inra', { model: expanded });
    const prompts = [randomTokens(18, plain.vocab), randomTokens(11, plain.vocab)];
    const lambdas = [-1, 0, 0.3, 1, 2.5];
    const want = await prefill(
      plain,
      prompts.map((tokens) => ({ tokens, lambdas: [1] })),
      true,
    );
    const got = await prefill(
      inra,
      prompts.map((tokens) => ({ tokens, lambdas })),
      true,
    );
    prompts.forEach((tokens, i) => {
      const expected = want.logits[i][0].subarray(0, tokens.length * plain.vocab);
      lambdas.forEach((_, k) =>
        expect(relErr(got.logits[i][k].subarray(0, tokens.length * plain.vocab), expected)).toBeLessThan(1e-5),
      );
    });
  });

  it(`with a randomised adapter, one batch of rows with different λ and lengths gives λ·aligned + (1 − λ)·reference per row, through prefill and decode (seed ${seed})`, async () => {
    const base = tinyCheckpoint({ arch, seed, shape: { numLayers: 3 } });
    const trained = join(tempDir(), 'trained');
    syntheticInra(base, trained, seed + 1, 0.05, 2);
    const ref = new ReferenceModel(openCheckpoint(trained));
    const g = await openGraph('inra', { model: trained });
    const V = g.vocab;
    const rows = [
      { lambda: -0.5, len: 17 },
      { lambda: 0, len: 9 },
      { lambda: 0.4, len: 21 },
      { lambda: 1, len: 5 },
      { lambda: 1.7, len: 13 },
    ].map((r) => ({ ...r, tokens: randomTokens(r.len, V) }));
    const expect1 = (tokens: number[], lambda: number, got: Float32Array) => {
      const aligned = ref.forward(tokens).logits.subarray((tokens.length - 1) * V); // adapters + layers
      const reference = ref.forward(tokens, 2).logits.subarray((tokens.length - 1) * V); // layers only
      expect(relErr(got, blend(aligned, reference, lambda))).toBeLessThan(1e-4);
    };
    const pre = await prefill(
      g,
      rows.map((r) => ({ tokens: r.tokens, lambdas: [r.lambda] })),
    );
    rows.forEach((r, i) => expect1(r.tokens, r.lambda, pre.logits[i][0]));
    // λ = 0 rows own no adapter slot, λ = 1 rows no reference slot: 8 branch rows, 4 adapter rows
    expect(g.runner.caches[0].size).toBe(8);
    expect(g.runner.caches[1].size).toBe(4);
    const seqs = rows.map((r) => [...r.tokens]);
    let last = pre.logits.map((l) => l[0]);
    for (let step = 0; step < 4; step++) {
      const next = new Map(pre.handles.map((h, i) => [h.id, { token: argmax(last[i]), lambdas: [rows[i].lambda] }]));
      pre.handles.forEach((h, i) => seqs[i].push(next.get(h.id)!.token));
      const out = await decode(g, next, pre.handles);
      last = out.map((o) => o[0]);
      rows.forEach((r, i) => expect1(seqs[i], r.lambda, last[i]));
    }
  });
});
