/**
 * The KV caches stay bound where the session computes (issue 14): per decode step only the small inputs go in and
 * the logits come out, as the binding counts them; rows leave the batch by copies inside the cache buffers.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decode, openGraph, prefill, randomTokens } from '../helpers/graphs.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import { GraphRunner } from '../../../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator } from '../../../gpu-backend/src/engine/rows.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';

afterAll(cleanupTempDirs);

describe('KV caches bound in place', () => {
  const seed = testSeed();

  it(`a decode step moves only token ids, lengths, λ and row maps in and the logits out (seed ${seed})`, async () => {
    const g = await openGraph('single', { model: tinyCheckpoint({ arch: 'qwen2', seed }) });
    const B = 5;
    const { handles } = await prefill(
      g,
      Array.from({ length: B }, (_, i) => ({ tokens: randomTokens(10 + i, g.vocab), lambdas: [1] })),
    );
    const before = { ...g.runner.transferBytes };
    await decode(g, new Map(handles.map((h, i) => [h.id, { token: i + 1, lambdas: [1] }])), handles);
    const toDevice = g.runner.transferBytes.toDevice - before.toDevice;
    const fromDevice = g.runner.transferBytes.fromDevice - before.fromDevice;
    // logits [B, 1, V] float32 out, nothing else
    expect(fromDevice).toBe(B * g.vocab * 4);
    // in: input_ids 8, seqlens_k 4, positions 8, lambda 4, aligned_row 8, reference_row 8 bytes per row, + total 4
    expect(toDevice).toBe(B * (8 + 4 + 8 + 4 + 8 + 8) + 4);
    const kvBytes = g.runner.caches.reduce((s, c) => s + c.allocatedBytes, 0);
    expect(kvBytes).toBeGreaterThan(toDevice + fromDevice); // what the old path moved twice per step
  });

  it.each([
    ['host copies of the used tokens', false],
    ['whole-row device-to-device copies (the Identity copy graph run through an IoBinding)', true],
  ])(
    `a row leaving the batch (the last row moved into its slot) leaves the others' logits unchanged: %s (seed ${seed})`,
    async (_, deviceCopies) => {
      const dir = join(tempDir(), 'trained');
      syntheticInra(tinyCheckpoint({ arch: 'qwen2', seed }), dir, seed + 1, 0.05, 1);
      const opened = await openGraph('inra', { model: dir });
      const runner = new GraphRunner(opened.runner.session, opened.runner.manifest, { deviceCopies });
      const g = { runner, rows: new RowAllocator(runner), vocab: opened.vocab };
      const prompts = [randomTokens(12, g.vocab), randomTokens(9, g.vocab), randomTokens(15, g.vocab)];
      const all = await prefill(
        g,
        prompts.map((tokens) => ({ tokens, lambdas: [0.5] })),
      );
      g.rows.remove(all.handles[0]); // slot 0 freed: the last sequence's rows move into it
      const rest = [all.handles[1], all.handles[2]];
      const after = await decode(g, new Map(rest.map((h) => [h.id, { token: 3, lambdas: [0.5] }])), rest);
      // the same two sequences alone in a fresh graph
      const h = await openGraph('inra', { model: dir });
      const alone = await prefill(
        h,
        [prompts[1], prompts[2]].map((tokens) => ({ tokens, lambdas: [0.5] })),
      );
      const expected = await decode(h, new Map(alone.handles.map((x) => [x.id, { token: 3, lambdas: [0.5] }])), alone.handles);
      for (let i = 0; i < 2; i++) expect(relErr(after[i][0], expected[i][0])).toBeLessThan(1e-5);
    },
  );
});
