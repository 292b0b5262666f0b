import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { halfToFloat, float32ToHalfBits } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { addDeviceSampling } from '../../../gpu-backend/src/graph/device-sampling.ts';
import { HOST_DECIDES, NO_FINITE_LOGIT, type DeviceSamplingOptions } from '../../../gpu-backend/src/graph/device-sampling-io.ts';
import { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { encodeOnnxModel } from '../../../gpu-backend/src/graph/onnx-writer.ts';
import { ModelSession, type HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import { samplingParams, type SamplingParams } from '../../../gpu-backend/src/sampling/params.ts';
import { Rng } from '../../../gpu-backend/src/sampling/rng.ts';
import { NonFiniteLogitsError, SequenceSampler } from '../../../gpu-backend/src/sampling/sampler.ts';
import { tempDir } from '../helpers/models.ts';

/**
 * The sampling block of gpu-backend/src/graph/device-sampling.ts, run by ONNX Runtime (CPU EP, realign's binding)
 * as a standalone graph: logits [B, V] and per-row parameters in, token and logprobs out. The oracle is the host
 * sampler itself: a SequenceSampler with seed s draws u = new Rng(s).nextFloat() at its first sampled step, so the
 * device gets that u and must choose the same token with the same logprobs.
 *
 * Shared by device-sampling-exactness.test.ts and device-sampling-statistics.test.ts.
 */

export type Params = Pick<SamplingParams, 'temperature' | 'top_k' | 'top_p' | 'min_p'> &
  Partial<Pick<SamplingParams, 'repetition_penalty' | 'presence_penalty' | 'frequency_penalty'>> & {
    logit_bias?: Record<string, number>;
  };

/** Dense penalty state of the rows, as the engine would keep it on the device. */
export interface PenaltyState {
  seen: Uint8Array; // [B, V]
  counts: Float32Array; // [B, V]
}

export const K = 20;
/** Logprobs: float64 on both sides; the sums differ only in association (stated bound 1e-5, expected ~1e-13). */
export const LOGPROB_TOL = 1e-5;

export class SamplingGraph {
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
      logits:
        this.opts.logitsType === 'float16'
          ? { type: 'float16', data: float32ToHalfBits(flat), dims: [B, V] }
          : { type: 'float32', data: flat, dims: [B, V] },
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
      feeds.sample_repetition_penalty = {
        type: 'float64',
        data: Float64Array.from(params, (p) => p.repetition_penalty ?? 1),
        dims: [B],
      };
      feeds.sample_presence_penalty = {
        type: 'float64',
        data: Float64Array.from(params, (p) => p.presence_penalty ?? 0),
        dims: [B],
      };
      feeds.sample_frequency_penalty = {
        type: 'float64',
        data: Float64Array.from(params, (p) => p.frequency_penalty ?? 0),
        dims: [B],
      };
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
export function host(row: Float32Array, p: Params, seed: number) {
  const sampler = new SequenceSampler(
    samplingParams({ ...p, logit_bias: p.logit_bias ?? {}, seed, logprobs: true, top_logprobs: K }),
    [],
  );
  const u = new Rng(seed).nextFloat();
  try {
    return { u, result: sampler.next(row) };
  } catch (e) {
    if (e instanceof NonFiniteLogitsError) return { u, result: null };
    throw e;
  }
}

/** A seeded generator of test data (not the sampler's stream). */
export function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
}

export function normals(n: number, scale: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand()));
}

/**
 * Random logits with some NaN, +∞, −∞ and repeated values (ties); one row in three is clustered (values within a
 * few hundredths), so that many distinct values share one of the host's top_p buckets (where its draw goes in id
 * order, not rank order).
 */
export function nastyRow(V: number, rand: () => number): Float32Array {
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
export function randomParams(rand: () => number, V: number): Params {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  return {
    temperature: pick(TEMPERATURES),
    top_k: pick([0, 0, 1, 2, 5, 17, V - 1, V, -1]),
    top_p: pick([1, 1, 0.9, 0.5, 1e-9, 0.999]),
    min_p: pick([0, 0, 0.05, 0.5, 0.999, 1e-30]),
  };
}

/** Compares device and host row by row; returns how many rows the device left to the host. */
export function expectSameAsHost(
  device: Awaited<ReturnType<SamplingGraph['run']>>,
  rows: Float32Array[],
  params: Params[],
  seeds: number[],
): number {
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

/** The row as a float16 graph reads it: each finite value rounded to float16 and back (NaN/±∞ kept as they are). */
export function roundToHalf(row: Float32Array): Float32Array {
  return Float32Array.from(row, (v) => (Number.isFinite(v) ? halfToFloat(float32ToHalfBits(Float32Array.of(v))[0]) : v));
}
