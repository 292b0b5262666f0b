/**
 * Device sampling against the host sampler, token for token: greedy ties and non-finite logits, the same u giving the
 * same token (C = V, C < V, float16), the real vocabulary, seeded streams, penalties, graph shape, candidate tie order
 * and logit_bias. The harness and oracle are in device-sampling-helpers.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakTies } from '../../../gpu-backend/src/graph/device-draw.ts';
import { addDeviceSampling } from '../../../gpu-backend/src/graph/device-sampling.ts';
import { HOST_DECIDES, NO_FINITE_LOGIT } from '../../../gpu-backend/src/graph/device-sampling-io.ts';
import { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { encodeOnnxModel } from '../../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession } from '../../../gpu-backend/src/ort/session.ts';
import { samplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { Rng } from '../../../gpu-backend/src/sampling/rng.ts';
import { SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';
import {
  K,
  LOGPROB_TOL,
  SamplingGraph,
  expectSameAsHost,
  lcg,
  nastyRow,
  normals,
  randomParams,
  roundToHalf,
  type Params,
  type PenaltyState,
} from './device-sampling-helpers.ts';

afterAll(() => cleanupTempDirs());

describe('device sampling: greedy', () => {
  let graph: SamplingGraph;
  beforeAll(async () => {
    graph = await SamplingGraph.open({ vocab: 12, logitsType: 'float32' });
  });

  it('takes the lowest id among tied maxima and never a NaN or ±∞ logit, like the host', async () => {
    const rows = [
      Float32Array.of(1, 3, 2, 3, 3, 0, -1, 2, 3, 0, 1, 1),
      Float32Array.of(NaN, Infinity, 5, -Infinity, 7, 7, NaN, 6, 7, Infinity, 1, 1),
      Float32Array.of(
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
        -3,
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
        -Infinity,
      ),
      Float32Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ];
    const params = rows.map(() => ({ temperature: 0, top_k: 3, top_p: 0.5, min_p: 0.1 }));
    const device = await graph.run(rows, params, [0.5, 0.5, 0.5, 0.5]);
    expect(device.map((d) => d.token)).toEqual([1, 4, 4, 0]);
    expectSameAsHost(device, rows, params, [1, 2, 3, 4]);
  });

  it('gives −1 for a row with no finite logit (the host throws NonFiniteLogitsError) and leaves the other rows alone', async () => {
    const rows = [
      Float32Array.from({ length: 12 }, (_, i) => [NaN, Infinity, -Infinity][i % 3]),
      Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    ];
    const params = [
      { temperature: 0.8, top_k: 0, top_p: 1, min_p: 0 },
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0 },
    ];
    const device = await graph.run(rows, params, [0.1, 0.1]);
    expect(device[0].token).toBe(NO_FINITE_LOGIT);
    expect(Number.isNaN(device[0].logprob)).toBe(true);
    expect(device[1].token).toBe(11);
    expectSameAsHost(device, rows, params, [5, 6]);
  });
});

describe('device sampling: the same u gives the host sampler’s token', () => {
  const V = 64;
  let full: SamplingGraph;
  let capped: SamplingGraph;
  let half: SamplingGraph;
  beforeAll(async () => {
    full = await SamplingGraph.open({ vocab: V, logitsType: 'float32', topLogprobs: K }); // candidates = V: every row decided on the device
    capped = await SamplingGraph.open({ vocab: V, logitsType: 'float32', candidates: 24, topLogprobs: K }); // C < V: exactness limits apply
    half = await SamplingGraph.open({ vocab: V, logitsType: 'float16', topLogprobs: K });
  });

  it('matches over random rows with NaN/±∞ and ties, extreme temperatures, top_k 1, tiny top_p, min_p near 1 (C = V)', async () => {
    const rand = lcg(11);
    const B = 64;
    for (let round = 0; round < 6; round++) {
      const rows = Array.from({ length: B }, () => nastyRow(V, rand));
      const params = rows.map(() => randomParams(rand, V));
      const seeds = rows.map((_, b) => round * 1000 + b);
      const device = await full.run(
        rows,
        params,
        seeds.map((s) => new Rng(s).nextFloat()),
      );
      expect(expectSameAsHost(device, rows, params, seeds), 'C = V decides every row').toBe(0);
    }
  });

  it('matches with candidates C < V wherever it decides, and defers only rows whose truncation reaches past rank C', async () => {
    const rand = lcg(12);
    const B = 64;
    let deferred = 0;
    let total = 0;
    for (let round = 0; round < 6; round++) {
      const rows = Array.from({ length: B }, () => nastyRow(V, rand));
      const params = rows.map(() => randomParams(rand, V));
      const seeds = rows.map((_, b) => 50_000 + round * 1000 + b);
      const device = await capped.run(
        rows,
        params,
        seeds.map((s) => new Rng(s).nextFloat()),
      );
      deferred += expectSameAsHost(device, rows, params, seeds);
      total += B;
      // rows that need no ranking (greedy, no truncation, min_p alone) are always decided on the device
      device.forEach((d, b) => {
        const p = params[b];
        const ranked = p.temperature > 0 && Number.isFinite(1 / p.temperature) && ((p.top_k > 0 && p.top_k < V) || p.top_p < 1);
        if (!ranked) expect(d.token, JSON.stringify(p)).not.toBe(HOST_DECIDES);
      });
    }
    expect(deferred, `${deferred} of ${total} rows deferred`).toBeLessThan(total / 4);
  });

  it('defers a nucleus wider than the candidates, unless min_p binds inside them', async () => {
    const flat = Float32Array.from({ length: V }, (_, i) => Math.sin(i) * 0.01); // ~uniform: the 0.9 nucleus holds ~58 tokens
    const rows = [flat, flat, flat];
    const params = [
      { temperature: 1, top_k: 0, top_p: 0.9, min_p: 0 },
      { temperature: 1, top_k: 0, top_p: 0.9, min_p: 0.995 }, // binds: only tokens within 0.5% of the best
      { temperature: 1, top_k: 40, top_p: 1, min_p: 0 }, // top_k past C = 24
    ];
    const seeds = [7, 8, 9];
    const device = await capped.run(
      rows,
      params,
      seeds.map((s) => new Rng(s).nextFloat()),
    );
    expect(device.map((d) => d.token === HOST_DECIDES)).toEqual([true, false, true]);
    expectSameAsHost(device, rows, params, seeds);
  });

  it('defers when the kept set reaches a tie that straddles rank C (the ids there are not known to be the lowest)', async () => {
    const row = Float32Array.from({ length: V }, (_, i) => (i % 4 === 0 ? 2 : 1)); // 16 at 2, 48 tied at 1; C = 24
    const params = [
      { temperature: 1, top_k: 20, top_p: 1, min_p: 0 }, // needs 4 of the 48 tied tokens: the lowest ids
      { temperature: 1, top_k: 16, top_p: 1, min_p: 0 }, // only the 16 at 2
      { temperature: 1, top_k: 0, top_p: 0.3, min_p: 0 }, // the nucleus ends inside the 16
    ];
    const seeds = [21, 22, 23];
    const device = await capped.run(
      [row, row, row],
      params,
      seeds.map((s) => new Rng(s).nextFloat()),
    );
    expect(device.map((d) => d.token === HOST_DECIDES)).toEqual([true, false, false]);
    expectSameAsHost(device, [row, row, row], params, seeds);
  });

  it('reads float16 logits (the CUDA graph’s type) as the host reads their float32 copy', async () => {
    const rand = lcg(13);
    const B = 64;
    // values a float16 holds exactly, so the host's float32 row is the same numbers
    const rows = Array.from({ length: B }, () => roundToHalf(nastyRow(V, rand)));
    const params = rows.map(() => randomParams(rand, V));
    const seeds = rows.map((_, b) => 90_000 + b);
    const device = await half.run(
      rows,
      params,
      seeds.map((s) => new Rng(s).nextFloat()),
    );
    expect(expectSameAsHost(device, rows, params, seeds)).toBe(0);
  });
});

describe('device sampling: at the real vocabulary size', () => {
  it('matches the host on V = 151936 float16 logits (297 blocks of 512 in the id-order sum, C = 1024 candidates)', async () => {
    const V = 151936;
    const graph = await SamplingGraph.open({ vocab: V, logitsType: 'float16' });
    const rand = lcg(31);
    const params: Params[] = [
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0 },
      { temperature: 1, top_k: 0, top_p: 1, min_p: 0 },
      { temperature: 0.6, top_k: 0, top_p: 1, min_p: 0.02 },
      { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0 },
      { temperature: 0.7, top_k: 0, top_p: 0.9, min_p: 0 },
      { temperature: 1.2, top_k: 0, top_p: 0.5, min_p: 0.1 },
    ];
    // a peaked, LLM-like row: a few strong tokens over a float16-rounded (tie-rich) tail
    const rows = params.map(() => {
      const row = normals(V, 1.5, rand);
      for (let j = 0; j < 30; j++) row[Math.floor(rand() * V)] += 8 + 4 * rand();
      return roundToHalf(row);
    });
    const seeds = params.map((_, b) => 7000 + b);
    const device = await graph.run(
      rows,
      params,
      seeds.map((s) => new Rng(s).nextFloat()),
    );
    expect(expectSameAsHost(device, rows, params, seeds)).toBe(0);
  });
});

describe('device sampling: seeded streams over many steps', () => {
  it('follows the host sampler step for step when the engine feeds each sampled row its next u (greedy rows draw none)', async () => {
    const V = 48;
    const graph = await SamplingGraph.open({ vocab: V, logitsType: 'float32', candidates: 16 });
    const params: Params[] = [
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0 },
      { temperature: 0.9, top_k: 0, top_p: 0.8, min_p: 0 },
      { temperature: 1.1, top_k: 8, top_p: 1, min_p: 0.05 },
      { temperature: 1, top_k: 0, top_p: 1, min_p: 0 },
      { temperature: 0.7, top_k: 0, top_p: 1, min_p: 0.1 },
    ];
    const seeds = [101, 202, 303, 404, 505];
    const hosts = params.map((p, b) => new SequenceSampler(samplingParams({ ...p, seed: seeds[b] }), []));
    const streams = seeds.map((s) => new Rng(s));
    const rand = lcg(77);
    let deferred = 0;
    for (let step = 0; step < 40; step++) {
      const rows = params.map(() => normals(V, 2.5, rand));
      const u = params.map((p, b) => (p.temperature > 0 && Number.isFinite(1 / p.temperature) ? streams[b].nextFloat() : 0));
      const device = await graph.run(rows, params, u);
      device.forEach((d, b) => {
        const expected = hosts[b].next(rows[b]).token;
        if (d.token === HOST_DECIDES) deferred++;
        else expect(d.token, `step ${step}, row ${b}`).toBe(expected);
      });
    }
    expect(deferred, 'steps left to the host').toBe(0);
  });
});

describe('device sampling: penalties from device-resident state', () => {
  it('applies repetition, presence and frequency penalties (after logit_bias) as the host does, step after step', async () => {
    const V = 40;
    const graph = await SamplingGraph.open({ vocab: V, logitsType: 'float32', biasSlots: 2, penalties: true, candidates: 16 });
    const params: Params[] = [
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0, repetition_penalty: 1.8 }, // greedy would repeat without it
      { temperature: 0.8, top_k: 0, top_p: 0.9, min_p: 0, presence_penalty: 1.5, frequency_penalty: 0.7 },
      {
        temperature: 1,
        top_k: 10,
        top_p: 1,
        min_p: 0.05,
        repetition_penalty: 0.7,
        frequency_penalty: -0.4,
        logit_bias: { 3: 2, 4: -100 },
      },
      { temperature: 1.3, top_k: 0, top_p: 1, min_p: 0, repetition_penalty: 1.2, presence_penalty: -0.5 },
      { temperature: 0.5, top_k: 0, top_p: 1, min_p: 0.2 }, // no penalties: untouched by the state
    ];
    const B = params.length;
    const prompts = [[1, 2, 3], [5, 5, 6], [3, 7, 30], [], [9]];
    const seeds = [11, 12, 13, 14, 15];
    const hosts = params.map((p, b) => new SequenceSampler(samplingParams({ ...p, seed: seeds[b], logprobs: true }), prompts[b]));
    const streams = seeds.map((s) => new Rng(s));
    const state: PenaltyState = { seen: new Uint8Array(B * V), counts: new Float32Array(B * V) };
    prompts.forEach((ids, b) => ids.forEach((id) => (state.seen[b * V + id] = 1)));
    const rand = lcg(3);
    const base = normals(V, 2, rand);
    let deferred = 0;
    for (let step = 0; step < 30; step++) {
      // slowly changing logits with a dominant token, so that penalties decide what comes next
      const rows = params.map(() => Float32Array.from(base, (v, i) => v + 0.3 * (rand() - 0.5) + (i === 0 ? 6 : 0)));
      const u = params.map((p, b) => (p.temperature > 0 ? streams[b].nextFloat() : 0));
      const device = await graph.run(rows, params, u, state);
      device.forEach((d, b) => {
        const expected = hosts[b].next(rows[b]);
        if (d.token === HOST_DECIDES) {
          // what the engine does for such a row: the host's token (same u), recorded in the device state by hand
          deferred++;
          state.seen[b * V + expected.token] = 1;
          state.counts[b * V + expected.token]++;
          return;
        }
        expect(d.token, `step ${step}, row ${b}`).toBe(expected.token);
        expect(Math.abs(d.logprob - expected.logprob!), `step ${step}, row ${b}: logprob`).toBeLessThan(LOGPROB_TOL);
      });
    }
    expect(deferred, 'rows left to the host').toBeLessThan(30);
    // the state the graph carried is the host's: generated counts per token
    const row0 = Array.from(state.counts.subarray(0, V));
    expect(row0.reduce((a, c) => a + c, 0)).toBe(30);
    expect(Math.max(...row0), 'repetition penalty spreads the greedy row over several tokens').toBeLessThan(30);
  });
});

describe('device sampling: graph shape', () => {
  it('has no control flow and no value-dependent shapes: fixed shapes for a fixed B, nothing the host must read mid-step', () => {
    const g = new Graph('shape-check');
    addDeviceSampling(g, g.input('logits', 'float16', ['B', 151936]), { vocab: 151936, logitsType: 'float16', biasSlots: 8 });
    const kinds = new Set(g.nodes.map((n) => n.opType));
    for (const banned of ['If', 'Loop', 'Scan', 'NonZero', 'Shape', 'Size', 'ConstantOfShape', 'Expand', 'Compress', 'Unique'])
      expect(kinds.has(banned), banned).toBe(false);
    expect(g.nodes.every((n) => n.domain === '')).toBe(true); // standard ONNX ops only
    expect(g.inputs.map((i) => i.dims)).toEqual([['B', 151936], ['B'], ['B'], ['B'], ['B'], ['B'], ['B', 8], ['B', 8]]);
  });
});

describe('device sampling: tie order of the candidates', () => {
  it('puts equal values in lower-id order whatever order TopK returned them in (CUDA’s radix TopK keeps no index order)', async () => {
    const V = 1000;
    const C = 8;
    const g = new Graph('break-ties');
    const values = g.input('values', 'float32', ['B', C]);
    const ids = g.input('ids', 'int64', ['B', C]);
    const out = breakTies(g, values, ids, V, C, '/t');
    g.output(out.values, 'ranked_values', 'float32', ['B', C]);
    g.output(out.ids, 'ranked_ids', 'int64', ['B', C]);
    const path = join(tempDir('realign-break-ties-'), 'ties.onnx');
    writeFileSync(path, encodeOnnxModel(g));
    const session = await ModelSession.open(path, { device: 'cpu', threads: 1 });
    // value-sorted rows with ties in scrambled id order, as a TopK without index tie-breaking may give them
    const vals = [
      [5, 5, 5, 3, 3, 2, 2, 2],
      [1, 1, 1, 1, 1, 1, 1, 1],
      [9, 8, 7, 6, 5, 4, 3, 2],
      [4, 4, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
    ];
    const idx = [
      [907, 12, 300, 999, 0, 500, 7, 42],
      [7, 6, 5, 4, 3, 2, 1, 0],
      [3, 1, 4, 15, 9, 2, 6, 5],
      [800, 8, 1, 2, 3, 0, 5, 4],
    ];
    const res = await session.run(
      {
        values: { type: 'float32', data: Float32Array.from(vals.flat()), dims: [4, C] },
        ids: { type: 'int64', data: BigInt64Array.from(idx.flat(), BigInt), dims: [4, C] },
      },
      ['ranked_values', 'ranked_ids'],
    );
    const got = Array.from(res.ranked_ids.data as BigInt64Array, Number);
    expect(got).toEqual(
      [
        [12, 300, 907, 0, 999, 7, 42, 500],
        [0, 1, 2, 3, 4, 5, 6, 7],
        [3, 1, 4, 15, 9, 2, 6, 5],
        [8, 800, 0, 1, 2, 3, 4, 5],
      ].flat(),
    );
    expect(Array.from(res.ranked_values.data as Float32Array)).toEqual(vals.flat());
    await session.release();
  });
});

describe('device sampling: logit_bias', () => {
  it('applies biases as the host does: saturating at the float32 range, −∞ stays banned, masked tokens stay masked', async () => {
    const V = 16;
    const graph = await SamplingGraph.open({ vocab: V, logitsType: 'float32', biasSlots: 4 });
    const base = Float32Array.from({ length: V }, (_, i) => i / 4);
    base[2] = NaN;
    base[3] = -Infinity;
    const big = new Float32Array(V).fill(3e38);
    const rows = [base, base, base, big, base];
    const params: Params[] = [
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0, logit_bias: { 0: 100, 15: -100 } }, // 0 becomes the argmax
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0, logit_bias: { 2: 100, 3: 100 } }, // NaN and −∞ stay masked
      { temperature: 1, top_k: 0, top_p: 1, min_p: 0, logit_bias: { 5: -100, 6: 50, 7: 20, 8: -5 } },
      { temperature: 0, top_k: 0, top_p: 1, min_p: 0, logit_bias: { 9: 100 } }, // 3e38 + 100 rounds back to 3e38: ties to id 0
      { temperature: 0.9, top_k: 4, top_p: 0.8, min_p: 0, logit_bias: { 1: 3.25, 4: 2 } },
    ];
    const seeds = [1, 2, 3, 4, 5];
    const device = await graph.run(
      rows,
      params,
      seeds.map((s) => new Rng(s).nextFloat()),
    );
    expect(device[0].token).toBe(0);
    expect(device[1].token).toBe(15);
    expect(expectSameAsHost(device, rows, params, seeds)).toBe(0);
  });
});
