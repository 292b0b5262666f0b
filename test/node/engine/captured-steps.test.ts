/**
 * CUDA graphs for decode steps (engine/captured-steps.ts), tested on the CPU: the bucket choice, padded steps giving
 * the unpadded steps' logits, buffers bound once per bucket at addresses that do not change, the graph id passed to
 * every captured run (and none to the others), the capture graph free of control flow, and the switches (the CUDA
 * provider option, the loader's cudaGraphs). Whether ONNX Runtime's CUDA EP captures and replays is checked by the
 * GPU script (bench/gpu/check/engine.ts), not here.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { CapturedSteps, chooseBucket, GRAPH_BUCKETS } from '../../../gpu-backend/src/engine/captured-steps.ts';
import { GraphRunner, type DeviceSampled, type StepPlan } from '../../../gpu-backend/src/engine/graph-runner.ts';
import { loadModel } from '../../../gpu-backend/src/engine/model-loader.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../../../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../../../gpu-backend/src/graph/build.ts';
import type { Graph } from '../../../gpu-backend/src/graph/ir.ts';
import { buildModelGraph, type GraphSpec } from '../../../gpu-backend/src/graph/model-graph.ts';
import {
  CUDA_GRAPH_OPTION,
  GPU_GRAPH_ID,
  IoBinding,
  ModelSession,
  RunOptions,
  sessionConfig,
} from '../../../gpu-backend/src/ort/session.ts';
import { argmax, randomTokens } from '../helpers/graphs.ts';
import { tinyInra } from '../helpers/engine.ts';
import { cleanupTempDirs, relErr, tempDir, testSeed } from '../helpers/models.ts';

afterAll(cleanupTempDirs);
afterEach(() => vi.restoreAllMocks());

const seed = testSeed();

describe('batch buckets', () => {
  it('pads to the smallest bucket holding the branch, adapter and output rows', () => {
    expect(chooseBucket({ rows: 1, outputs: 1 }, 64)).toBe(1);
    expect(chooseBucket({ rows: 3, outputs: 2 }, 64)).toBe(4);
    expect(chooseBucket({ rows: 2, outputs: 6 }, 64)).toBe(8); // more λ outputs than rows
    expect(chooseBucket({ rows: 17, outputs: 17 }, 64)).toBe(24);
    expect(chooseBucket({ rows: 4, adapterRows: 4, outputs: 4 }, 64)).toBe(4);
  });

  it('needs no padded branch row for padded adapter rows (they are read by no row)', () => {
    expect(chooseBucket({ rows: 4, adapterRows: 2, outputs: 4 }, 64)).toBe(4);
    expect(chooseBucket({ rows: 5, adapterRows: 3, outputs: 3 }, 64)).toBe(8);
    expect(chooseBucket({ rows: 16, adapterRows: 8, outputs: 8 }, 16)).toBe(16); // a full cache of λ 0.5 rows
  });

  it('gives none past the row capacity or the largest bucket', () => {
    expect(chooseBucket({ rows: 40, outputs: 40 }, 32)).toBeNull();
    expect(chooseBucket({ rows: 5, adapterRows: 2, outputs: 4 }, 4)).toBeNull();
    expect(chooseBucket({ rows: GRAPH_BUCKETS.at(-1)! + 1, outputs: 1 }, 1 << 20)).toBeNull();
  });
});

/** Every node of a graph and its subgraphs. */
function opTypes(g: Graph): string[] {
  const out: string[] = [];
  for (const n of g.nodes) {
    out.push(n.opType);
    for (const a of Object.values(n.attributes ?? {})) {
      const sub = (a as { g?: Graph }).g;
      if (sub) out.push(...opTypes(sub));
    }
  }
  return out;
}

describe('captured decode steps of an InRa graph (CPU, host buffers)', () => {
  const dir = tinyInra(seed);
  const spec: GraphSpec = { mode: 'inra', floatType: 'float32', maxContext: 64, model: openCheckpoint(dir) };

  it('the capture graph has no If, Loop or Shape (nothing read on the host inside a step); the step graph has its If', () => {
    const step = opTypes(buildModelGraph(spec).graph);
    const capture = opTypes(buildModelGraph(spec, { unconditionalAdapters: true }).graph);
    expect(step).toContain('If');
    for (const op of ['If', 'Loop', 'Scan', 'Shape', 'Size', 'NonZero']) expect(capture).not.toContain(op);
    const sampled = opTypes(buildModelGraph({ ...spec, deviceSampling: true }, { unconditionalAdapters: true }).graph);
    for (const op of ['If', 'Loop', 'Scan', 'Shape', 'Size', 'NonZero']) expect(sampled).not.toContain(op);
  });

  async function runners() {
    const cache = tempDir('realign-capture-');
    const files = ensureGraph(spec, cache);
    const plain = new GraphRunner(await ModelSession.open(files.modelPath, { device: 'cpu', threads: 1 }), files.manifest);
    const padded = new GraphRunner(await ModelSession.open(files.modelPath, { device: 'cpu', threads: 1 }), files.manifest, {
      rows: 16,
    });
    const cap = ensureGraph(spec, cache, undefined, 'capture');
    padded.attachCapture(await ModelSession.open(cap.modelPath, { device: 'cpu', threads: 1, cudaGraphs: true }), cap.manifest);
    return { plain, padded, vocab: files.manifest.vocabSize };
  }

  // λ 0.5 (both branches, an adapter row), 0 (reference only), 1 (aligned only), and two λ over one sequence:
  // R = 6 branch rows, A = 3 adapter rows, B = 5 output rows → bucket 8
  const lambdas = [[0.5], [0], [1], [0.3, 0.8]];

  it(`padded to bucket 8, decode steps give the unpadded logits within 1e-5, at fixed addresses, one graph id (seed ${seed})`, async () => {
    const { plain, padded, vocab } = await runners();
    const run = vi.spyOn(IoBinding.prototype, 'run');
    const sides = [plain, padded].map((runner) => ({ runner, rows: new RowAllocator(runner), handles: [] as RowHandle[] }));
    const prompts = lambdas.map((_, i) => randomTokens(5 + 3 * i, vocab));
    for (const s of sides) {
      s.handles = lambdas.map((l) => s.rows.add(branchesFor('inra', l)));
      const plan = s.rows.prefillPlan(s.handles.map((handle, i) => ({ handle, tokens: prompts[i], lambdas: lambdas[i] })));
      await s.runner.step(plan);
      s.rows.commit(plan);
    }
    const prefillCalls = run.mock.calls.length;
    expect(run.mock.calls.every(([options]) => options === undefined)).toBe(true); // prefill: no graph id
    let tokens = lambdas.map((_, i) => i + 1);
    let addresses: string[] | null = null;
    for (let step = 0; step < 5; step++) {
      const out: Float32Array[] = [];
      for (const s of sides) {
        const next = new Map(s.handles.map((h, i) => [h.id, { token: tokens[i], lambdas: lambdas[i] }]));
        const plan = s.rows.decodePlan(next) as StepPlan;
        out.push((await s.runner.step(plan)).logits);
        s.rows.commit(plan as never);
      }
      expect(out[1].length).toBe(5 * vocab); // only the real output rows come back
      expect(relErr(out[1], out[0])).toBeLessThan(1e-5);
      const bound = padded.capture!.boundValues(8).map((v) => String(v.address()));
      expect(bound.length).toBeGreaterThan(0);
      if (addresses) expect(bound).toEqual(addresses);
      addresses = bound;
      // next tokens: each sequence's first output row's argmax, the same on both sides
      let at = 0;
      tokens = lambdas.map((l) => {
        const t = argmax(out[0].subarray(at * vocab, (at + 1) * vocab));
        at += l.length;
        return t;
      });
    }
    expect(padded.capture!.stats.runs).toBe(5);
    expect(padded.capture!.stats.fallbacks).toBe(0);
    const ids = padded.capture!.graphIds();
    expect([...ids.keys()]).toEqual([8]);
    expect(ids.get(8)).toHaveLength(1);
    const id = ids.get(8)![0];
    expect(id).toBeGreaterThanOrEqual(1);
    // every decode run of the padded side got the run options with that graph id; the plain side's got none
    const decodeCalls = run.mock.calls.slice(prefillCalls);
    const withId = decodeCalls.filter(([o]) => o instanceof RunOptions);
    expect(withId).toHaveLength(5);
    for (const [o] of withId) expect((o as RunOptions).entries[GPU_GRAPH_ID]).toBe(String(id));
    expect(decodeCalls.filter(([o]) => o === undefined)).toHaveLength(5);
    await plain.release();
    await padded.release();
  });

  it('a decode step with a prompt still in the caches runs the ordinary graph, with the same logits', async () => {
    const { plain, padded, vocab } = await runners();
    const sides = [plain, padded].map((runner) => ({ runner, rows: new RowAllocator(runner), handles: [] as RowHandle[] }));
    const prompt = randomTokens(7, vocab);
    for (const s of sides) {
      s.handles = [s.rows.add(branchesFor('inra', [0.5]))];
      const plan = s.rows.prefillPlan([{ handle: s.handles[0], tokens: prompt, lambdas: [0.5] }]);
      await s.runner.step(plan);
      s.rows.commit(plan);
      s.rows.add(branchesFor('inra', [0.5])); // a sequence whose prompt is not in yet: its slots sit behind
    }
    const out: Float32Array[] = [];
    for (const s of sides) {
      const plan = s.rows.decodePlan(new Map([[s.handles[0].id, { token: 2, lambdas: [0.5] }]]));
      out.push((await s.runner.step(plan)).logits);
    }
    expect(padded.capture!.stats.runs).toBe(0);
    expect(padded.capture!.stats.fallbacks).toBe(1);
    expect(relErr(out[1], out[0])).toBeLessThan(1e-5);
    await plain.release();
    await padded.release();
  });

  it('a captured run that fails turns captured steps off and the step runs on the ordinary graph, same logits', async () => {
    const { plain, padded, vocab } = await runners();
    const sides = [plain, padded].map((runner) => ({ runner, rows: new RowAllocator(runner), handles: [] as RowHandle[] }));
    const prompt = randomTokens(6, vocab);
    for (const s of sides) {
      s.handles = [s.rows.add(branchesFor('inra', [0.5]))];
      const plan = s.rows.prefillPlan([{ handle: s.handles[0], tokens: prompt, lambdas: [0.5] }]);
      await s.runner.step(plan);
      s.rows.commit(plan);
    }
    const fail = vi.spyOn(CapturedSteps.prototype, 'run').mockImplementation(() => {
      throw new Error('capture refused (test)');
    });
    const out: Float32Array[] = [];
    for (const s of sides) {
      const plan = s.rows.decodePlan(new Map([[s.handles[0].id, { token: 2, lambdas: [0.5] }]]));
      out.push((await s.runner.step(plan)).logits);
    }
    expect(fail).toHaveBeenCalledTimes(1);
    expect(padded.capture).toBeNull();
    expect(padded.captureError?.message).toMatch(/capture refused/);
    expect(relErr(out[1], out[0])).toBeLessThan(1e-5);
    await plain.release();
    await padded.release();
  });

  it('the sampling graph, inputs and outputs staged as on CUDA: captured steps choose the unpadded steps’ tokens with the same logprobs (padded rows greedy)', async () => {
    const sampled = { ...spec, deviceSampling: true };
    const cache = tempDir('realign-capture-');
    const files = ensureGraph(sampled, cache);
    const plain = new GraphRunner(await ModelSession.open(files.modelPath, { device: 'cpu', threads: 1 }), files.manifest);
    const padded = new GraphRunner(await ModelSession.open(files.modelPath, { device: 'cpu', threads: 1 }), files.manifest, {
      rows: 16,
    });
    const cap = ensureGraph(sampled, cache, undefined, 'capture');
    // staged: inputs through host staging buffers and the Identity copy graphs, outputs back through them, as on CUDA
    padded.attachCapture(await ModelSession.open(cap.modelPath, { device: 'cpu', threads: 1 }), cap.manifest, { staged: true });
    const vocab = files.manifest.vocabSize;
    const sides = [plain, padded].map((runner) => ({ runner, rows: new RowAllocator(runner), handles: [] as RowHandle[] }));
    for (const s of sides) {
      s.handles = lambdas.map((l) => s.rows.add(branchesFor('inra', l)));
      const plan = s.rows.prefillPlan(
        s.handles.map((handle, i) => ({
          handle,
          tokens: randomTokens(4, vocab, () => ((i * 7 + 3) % 11) / 11),
          lambdas: lambdas[i],
        })),
      );
      await s.runner.step(plan);
      s.rows.commit(plan);
    }
    const B = 5;
    const feed = {
      uniform: Float64Array.from({ length: B }, (_, b) => (b + 0.5) / B),
      temperature: Float64Array.from({ length: B }, (_, b) => (b % 2 ? 0.8 : 0)),
      topP: Float64Array.from({ length: B }, (_, b) => (b === 3 ? 0.9 : 1)),
      minP: new Float64Array(B),
      topK: BigInt64Array.from({ length: B }, (_, b) => (b === 1 ? 5n : 0n)),
      top: true,
    };
    let tokens = lambdas.map(() => 1);
    const runs = vi.spyOn(IoBinding.prototype, 'run');
    for (let step = 0; step < 3; step++) {
      const res: DeviceSampled[] = [];
      for (const s of sides) {
        const plan = s.rows.decodePlan(new Map(s.handles.map((h, i) => [h.id, { token: tokens[i], lambdas: lambdas[i] }])));
        res.push(await s.runner.stepSampled(plan, feed));
        s.rows.commit(plan);
      }
      expect(Array.from(res[1].token)).toEqual(Array.from(res[0].token));
      expect(res[1].token.length).toBe(B);
      for (let b = 0; b < B; b++) expect(Math.abs(res[1].logprob[b] - res[0].logprob[b])).toBeLessThan(1e-5);
      expect(Array.from(res[1].topIds!)).toEqual(Array.from(res[0].topIds!));
      expect(relErr(res[1].logitsRow(4), res[0].logitsRow(4))).toBeLessThan(1e-5);
      let at = 0;
      tokens = lambdas.map((l) => {
        const t = Number(res[0].token[at]);
        at += l.length;
        return Math.max(t, 0);
      });
    }
    expect(padded.capture!.stats.runs).toBe(3);
    // per step: the plain side's run; the captured side's one input-block copy, its replay, one output-block copy
    expect(runs).toHaveBeenCalledTimes(3 * (1 + 3));
    await plain.release();
    await padded.release();
  });
});

describe('switches', () => {
  it('the CUDA provider option enable_cuda_graph is set for CUDA sessions with cudaGraphs, never on the CPU', () => {
    expect(sessionConfig({ device: 'cuda', cudaGraphs: true }).cuda).toEqual({ [CUDA_GRAPH_OPTION]: '1' });
    expect(sessionConfig({ device: 'cuda', cudaGraphs: true, cuda: { device_id: '1' } }).cuda).toEqual({
      device_id: '1',
      [CUDA_GRAPH_OPTION]: '1',
    });
    expect(sessionConfig({ device: 'cuda' }).cuda).toBeUndefined();
    expect(sessionConfig({ device: 'cpu', cudaGraphs: true }).cuda).toBeUndefined();
  });

  it('run options carry the graph id ORT reads (gpu_graph_id), ≥ 1 or −1', () => {
    const o = RunOptions.graph(3);
    expect(o.entries).toEqual({ gpu_graph_id: '3' });
    o.dispose();
    RunOptions.graph(-1).dispose();
    expect(() => RunOptions.graph(0)).toThrow(/gpu_graph_id/);
  });

  it('the loader attaches captured steps with cudaGraphs on; auto and off leave the CPU without them', async () => {
    const dir = tinyInra(seed + 2);
    const graphCache = tempDir('realign-capture-');
    for (const [cudaGraphs, attached] of [
      ['auto', false],
      ['off', false],
      ['on', true],
    ] as const) {
      const m = await loadModel({ mode: 'inra', model: dir }, { device: 'cpu', graphCache, maxContext: 64, cudaGraphs });
      expect(m.runner.capture !== null).toBe(attached);
      await m.runner.release();
    }
  });
});
