/**
 * Device sampling's distribution: many device draws against analyticDistribution, Pearson's chi-square.
 * The harness is in device-sampling-helpers.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { samplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { Rng } from '../../../gpu-backend/src/sampling/rng.ts';
import { cleanupTempDirs } from '../helpers/models.ts';
import { analyticDistribution } from '../sampling/analytic.ts';
import { chiSquareTest } from '../sampling/chi-square.ts';
import { SamplingGraph, lcg, normals, type Params } from './device-sampling-helpers.ts';

afterAll(() => cleanupTempDirs());

describe('device sampling: distribution (chi-square)', () => {
  /**
   * N device draws with u from one seeded stream against analyticDistribution (the definitions, independent of the
   * host code), Pearson's chi-square at significance ALPHA = 1e-4: a correct sampler fails a given case with
   * probability 1e-4 (the seeds make each run deterministic). Excluded tokens must never be drawn.
   */
  const ALPHA = 1e-4;
  const SMALL = new Float32Array([0.3, 2.0, -1.0, 1.2, 0.0, 1.5, -2.0, 0.5, 1.0, -0.5]);
  const WIDE = normals(200, 2, lcg(5));

  async function fit(graph: SamplingGraph, logits: Float32Array, p: Params, n: number, seed: number) {
    const B = 500;
    const rng = new Rng(seed);
    const counts = new Float64Array(logits.length);
    for (let done = 0; done < n; done += B) {
      const device = await graph.run(
        Array.from({ length: B }, () => logits),
        Array.from({ length: B }, () => p),
        Array.from({ length: B }, () => rng.nextFloat()),
      );
      for (const d of device) {
        expect(d.token).toBeGreaterThanOrEqual(0);
        counts[d.token]++;
      }
    }
    const probs = analyticDistribution(logits, samplingParams(p));
    for (let i = 0; i < probs.length; i++) if (probs[i] === 0) expect(counts[i], `token ${i} is outside the support`).toBe(0);
    const result = chiSquareTest(counts, probs, ALPHA);
    expect(result.df).toBeGreaterThan(0);
    expect(
      result.statistic,
      `chi-square ${result.statistic.toFixed(2)} on ${result.df} df (p = ${result.pValue.toExponential(2)})`,
    ).toBeLessThan(result.critical);
  }

  it('fits softmax, top_k, top_p, min_p and their combinations on 10 tokens', async () => {
    const graph = await SamplingGraph.open({ vocab: SMALL.length, logitsType: 'float32' });
    await fit(graph, SMALL, { temperature: 1, top_k: 0, top_p: 1, min_p: 0 }, 20_000, 1);
    await fit(graph, SMALL, { temperature: 0.7, top_k: 4, top_p: 1, min_p: 0 }, 20_000, 2);
    await fit(graph, SMALL, { temperature: 1.3, top_k: 0, top_p: 0.8, min_p: 0 }, 20_000, 3);
    await fit(graph, SMALL, { temperature: 1, top_k: 0, top_p: 1, min_p: 0.2 }, 20_000, 4);
    await fit(graph, SMALL, { temperature: 1, top_k: 6, top_p: 0.9, min_p: 0.1 }, 20_000, 5);
  });

  it('fits on 200 tokens with candidates C = 64 < V (top_p and top_k inside the candidates, min_p and full softmax in id order)', async () => {
    const graph = await SamplingGraph.open({ vocab: WIDE.length, logitsType: 'float32', candidates: 64 });
    await fit(graph, WIDE, { temperature: 1, top_k: 0, top_p: 1, min_p: 0 }, 20_000, 6);
    await fit(graph, WIDE, { temperature: 0.8, top_k: 0, top_p: 0.6, min_p: 0 }, 20_000, 7);
    await fit(graph, WIDE, { temperature: 1, top_k: 30, top_p: 0.95, min_p: 0 }, 20_000, 8);
    await fit(graph, WIDE, { temperature: 1.2, top_k: 0, top_p: 1, min_p: 0.05 }, 20_000, 9);
  });
});
