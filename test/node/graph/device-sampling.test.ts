import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { halfToFloat, float32ToHalfBits } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { breakTies } from '../../../gpu-backend/src/graph/device-draw.ts';
import { HOST_DECIDES, NO_FINITE_LOGIT, addDeviceSampling, type DeviceSamplingOptions } from '../../../gpu-backend/src/graph/device-sampling.ts';
import { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { encodeOnnxModel } from '../../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession, type HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import { samplingParams, type SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { Rng } from '../../../gpu-backend/src/sampling/rng.ts';
import { NonFiniteLogitsError, SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';
import { cleanupTempDirs, tempDir } from '../helpers/models.ts';
import { analyticDistribution } from '../sampling/analytic.ts';
import { chiSquareTest } from '../sampling/chi-square.ts';

/**
 * The sampling block of gpu-backend/src/graph/device-sampling.ts, run by ONNX Runtime (CPU EP, realign's binding)
 * as a standalone graph: logits [B, V] and per-row parameters in, token and logprobs out. The oracle is the host
 * sampler itself: a SequenceSampler with seed s draws u = new Rng(s).nextFloat() at its first sampled step, so the
 * device gets that u and must choose the same token with the same logprobs.
 */

type Params = Pick<SamplingParams, 'temperature' | 'top_k' | 'top_p' | 'min_p'> &
  Partial<Pick<SamplingParams, 'repetition_penalty' | 'presence_penalty' | 'frequency_penalty'>> & { logit_bias?: Record<string, number> };

/** Dense penalty state of the rows, as the engine would keep it on the device. */
interface PenaltyState {
  seen: Uint8Array; // [B, V]
  counts: Float32Array; // [B, V]
}

const K = 20;
/** Logprobs: float64 on both sides; the sums differ only in association (stated bound 1e-5, expected ~1e-13). */
const LOGPROB_TOL = 1e-5;

class SamplingGraph {
  private constructor(
    readonly session: ModelSession,
    readonly opts: DeviceSamplingOptions,
  ) {}

  static async open(opts: DeviceSamplingOptions): Promise<SamplingGraph> {
    const g = new Graph('device-sampling-test');
    const logits = g.input('logits', opts.logitsType, ['B', opts.vocab]);
    addDeviceSampling(g, logits, opts);
    const path = join(tempDir('realign-device-sampling-'), 'sample.onnx');
    writeFileSync(path, encodeOnnxModel(g));
    return new SamplingGraph(await ModelSession.open(path, { device: 'cpu', threads: 1 }), opts);
  }

  /** One run over rows of logits, each with its parameters and u. */
  async run(rows: Float32Array[], params: Params[], u: number[], state?: PenaltyState) {
    const B = rows.length;
    const V = this.opts.vocab;
    const flat = new Float32Array(B * V);
    rows.forEach((r, b) => flat.set(r, b * V));
    const feeds: Record<string, HostTensor> = {
      logits: this.opts.logitsType === 'float16' ? { type: 'float16', data: float32ToHalfBits(flat), dims: [B, V] } : { type: 'float32', data: flat, dims: [B, V] },
      sample_temperature: { type: 'float64', data: Float64Array.from(params, (p) => p.temperature), dims: [B] },
      sample_top_k: { type: 'int64', data: BigInt64Array.from(params, (p) => BigInt(p.top_k)), dims: [B] },
      sample_top_p: { type: 'float64', data: Float64Array.from(params, (p) => p.top_p), dims: [B] },
      sample_min_p: { type: 'float64', data: Float64Array.from(params, (p) => p.min_p), dims: [B] },
      sample_uniform: { type: 'float64', data: Float64Array.from(u), dims: [B] },
    };
    const kb = this.opts.biasSlots ?? 0;
    if (kb > 0) {
      const ids = new BigInt64Array(B * kb).fill(BigInt(V));
      const values = new Float64Array(B * kb);
      params.forEach((p, b) => {
        Object.entries(p.logit_bias ?? {}).forEach(([id, v], j) => {
          ids[b * kb + j] = BigInt(id);
          values[b * kb + j] = v;
        });
      });
      feeds.sample_bias_ids = { type: 'int64', data: ids, dims: [B, kb] };
      feeds.sample_bias_values = { type: 'float64', data: values, dims: [B, kb] };
    }
    const fetch = ['sample_token', 'sample_logprob', 'sample_top_ids', 'sample_top_logprobs'];
    if (this.opts.penalties) {
      if (!state) throw new Error('this graph needs the penalty state');
      feeds.sample_repetition_penalty = { type: 'float64', data: Float64Array.from(params, (p) => p.repetition_penalty ?? 1), dims: [B] };
      feeds.sample_presence_penalty = { type: 'float64', data: Float64Array.from(params, (p) => p.presence_penalty ?? 0), dims: [B] };
      feeds.sample_frequency_penalty = { type: 'float64', data: Float64Array.from(params, (p) => p.frequency_penalty ?? 0), dims: [B] };
      feeds.sample_seen = { type: 'bool', data: state.seen, dims: [B, V] };
      feeds.sample_counts = { type: 'float32', data: state.counts, dims: [B, V] };
      fetch.push('sample_seen_next', 'sample_counts_next');
    }
    const out = await this.session.run(feeds, fetch);
    if (state) {
      state.seen.set(out.sample_seen_next.data as Uint8Array);
      state.counts.set(out.sample_counts_next.data as Float32Array);
    }
    const k = out.sample_top_ids.dims[1];
    const ids = out.sample_top_ids.data as BigInt64Array;
    const lps = out.sample_top_logprobs.data as Float64Array;
    return Array.from({ length: B }, (_, b) => ({
      token: Number((out.sample_token.data as BigInt64Array)[b]),
      logprob: (out.sample_logprob.data as Float64Array)[b],
      top: Array.from({ length: k }, (_, j) => ({ token: Number(ids[b * k + j]), logprob: lps[b * k + j] })),
    }));
  }
}

/** The host's choice for this row at its first step with `seed`, and the u it drew. */
function host(row: Float32Array, p: Params, seed: number) {
  const sampler = new SequenceSampler(samplingParams({ ...p, logit_bias: p.logit_bias ?? {}, seed, logprobs: true, top_logprobs: K }), []);
  const u = new Rng(seed).nextFloat();
  try {
    return { u, result: sampler.next(row) };
  } catch (e) {
    if (e instanceof NonFiniteLogitsError) return { u, result: null };
    throw e;
  }
}

/** A seeded generator of test data (not the sampler's stream). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
}

function normals(n: number, scale: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()));
}

/**
 * Random logits with some NaN, +∞, −∞ and repeated values (ties); one row in three is clustered (values within a
 * few hundredths), so that many distinct values share one of the host's top_p buckets (where its draw goes in id
 * order, not rank order).
 */
function nastyRow(V: number, rand: () => number): Float32Array {
  const row = rand() < 1 / 3 ? Float32Array.from(normals(V, 0.02, rand), (v) => 3 + v) : normals(V, 1 + 4 * rand(), rand);
  for (let i = 0; i < V; i++) {
    const r = rand();
    if (r < 0.03) row[i] = NaN;
    else if (r < 0.05) row[i] = Infinity;
    else if (r < 0.1) row[i] = -Infinity;
    else if (r < 0.3) row[i] = Math.round(row[i] * 2) / 2; // many exact ties
  }
  return row;
}

const TEMPERATURES = [0, 1, 0.7, 1.5, 1e-3, 50, 1e-300];
function randomParams(rand: () => number, V: number): Params {
  const pick = <T,>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  return {
    temperature: pick(TEMPERATURES),
    top_k: pick([0, 0, 1, 2, 5, 17, V - 1, V, -1]),
    top_p: pick([1, 1, 0.9, 0.5, 1e-9, 0.999]),
    min_p: pick([0, 0, 0.05, 0.5, 0.999, 1e-30]),
  };
}

/** Compares device and host row by row; returns how many rows the device left to the host. */
function expectSameAsHost(device: Awaited<ReturnType<SamplingGraph['run']>>, rows: Float32Array[], params: Params[], seeds: number[]): number {
  let deferred = 0;
  device.forEach((d, b) => {
    const { result } = host(rows[b], params[b], seeds[b]);
    const what = `row ${b}: ${JSON.stringify(params[b])}, seed ${seeds[b]}`;
    if (result === null) {
      expect(d.token, what).toBe(NO_FINITE_LOGIT);
      return;
    }
    if (d.token === HOST_DECIDES) {
      deferred++;
      return;
    }
    expect(d.token, what).toBe(result.token);
    expect(Math.abs(d.logprob - result.logprob!), `${what}: logprob ${d.logprob} vs ${result.logprob}`).toBeLessThan(LOGPROB_TOL);
    const top = result.top!;
    for (let j = 0; j < d.top.length; j++) {
      if (j < top.length) {
        expect(d.top[j].token, `${what}: top ${j}`).toBe(top[j].token);
        expect(Math.abs(d.top[j].logprob - top[j].logprob), `${what}: top ${j} logprob`).toBeLessThan(LOGPROB_TOL);
      } else expect(d.top[j].logprob, `${what}: top ${j} past the finite logits`).toBe(-Infinity);
    }
  });
  return deferred;
}

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
      Float32Array.of(-Infinity, -Infinity, -Infinity, -Infinity, -3, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity),
      Float32Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ];
    const params = rows.map(() => ({ temperature: 0, top_k: 3, top_p: 0.5, min_p: 0.1 }));
    const device = await graph.run(rows, params, [0.5, 0.5, 0.5, 0.5]);
    expect(device.map((d) => d.token)).toEqual([1, 4, 4, 0]);
    expectSameAsHost(device, rows, params, [1, 2, 3, 4]);
  });

  it('gives −1 for a row with no finite logit (the host throws NonFiniteLogitsError) and leaves the other rows alone', async () => {
    const rows = [Float32Array.from({ length: 12 }, (_, i) => [NaN, Infinity, -Infinity][i % 3]), Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)];
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
      const device = await full.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
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
      const device = await capped.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
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
    const device = await capped.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
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
    const device = await capped.run([row, row, row], params, seeds.map((s) => new Rng(s).nextFloat()));
    expect(device.map((d) => d.token === HOST_DECIDES)).toEqual([true, false, false]);
    expectSameAsHost(device, [row, row, row], params, seeds);
  });

  it('reads float16 logits (the CUDA graph’s type) as the host reads their float32 copy', async () => {
    const rand = lcg(13);
    const B = 64;
    // values a float16 holds exactly, so the host's float32 row is the same numbers
    const rows = Array.from({ length: B }, () => Float32Array.from(nastyRow(V, rand), (v) => (Number.isFinite(v) ? halfToFloat(float32ToHalfBits(Float32Array.of(v))[0]) : v)));
    const params = rows.map(() => randomParams(rand, V));
    const seeds = rows.map((_, b) => 90_000 + b);
    const device = await half.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
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
      return Float32Array.from(row, (v) => halfToFloat(float32ToHalfBits(Float32Array.of(v))[0]));
    });
    const seeds = params.map((_, b) => 7000 + b);
    const device = await graph.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
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
      { temperature: 1, top_k: 10, top_p: 1, min_p: 0.05, repetition_penalty: 0.7, frequency_penalty: -0.4, logit_bias: { 3: 2, 4: -100 } },
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
    for (const banned of ['If', 'Loop', 'Scan', 'NonZero', 'Shape', 'Size', 'ConstantOfShape', 'Expand', 'Compress', 'Unique']) expect(kinds.has(banned), banned).toBe(false);
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
      { values: { type: 'float32', data: Float32Array.from(vals.flat()), dims: [4, C] }, ids: { type: 'int64', data: BigInt64Array.from(idx.flat(), BigInt), dims: [4, C] } },
      ['ranked_values', 'ranked_ids'],
    );
    const got = Array.from(res.ranked_ids.data as BigInt64Array, Number);
    expect(got).toEqual([
      [12, 300, 907, 0, 999, 7, 42, 500],
      [0, 1, 2, 3, 4, 5, 6, 7],
      [3, 1, 4, 15, 9, 2, 6, 5],
      [8, 800, 0, 1, 2, 3, 4, 5],
    ].flat());
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
    const device = await graph.run(rows, params, seeds.map((s) => new Rng(s).nextFloat()));
    expect(device[0].token).toBe(0);
    expect(device[1].token).toBe(15);
    expect(expectSameAsHost(device, rows, params, seeds)).toBe(0);
  });
});

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
      const device = await graph.run(Array.from({ length: B }, () => logits), Array.from({ length: B }, () => p), Array.from({ length: B }, () => rng.nextFloat()));
      for (const d of device) {
        expect(d.token).toBeGreaterThanOrEqual(0);
        counts[d.token]++;
      }
    }
    const probs = analyticDistribution(logits, samplingParams(p));
    for (let i = 0; i < probs.length; i++) if (probs[i] === 0) expect(counts[i], `token ${i} is outside the support`).toBe(0);
    const result = chiSquareTest(counts, probs, ALPHA);
    expect(result.df).toBeGreaterThan(0);
    expect(result.statistic, `chi-square ${result.statistic.toFixed(2)} on ${result.df} df (p = ${result.pValue.toExponential(2)})`).toBeLessThan(result.critical);
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
