/**
 * Comparisons a–c at the graph level on the CPU: decode steps of the fused InRa graph, the naive InRa layout (each
 * branch through every layer with its own vocabulary projection, as the original release does), the plain base
 * model, and InRa rows that need one branch — all measured in turn in one process.
 */
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import type { GraphManifest, GraphMode } from '../gpu-backend/src/graph/model-graph.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../gpu-backend/src/engine/rows.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { join } from 'node:path';
import { BENCH_ROOT, benchModels } from './lib/models.ts';
import { interleaved, pairedRatio, summarize, type Timing } from './lib/stats.ts';

/** One decode-throughput measurement. */
export interface DecodeRow {
  preset: string;
  batch: number;
  variant: string;
  timing: Timing;
  tokensPerSecond: number;
}

/** Results of a–c for one preset. */
export interface GraphBenchResult {
  preset: string;
  rows: DecodeRow[];
  /** per batch: naive step time / fused step time (= fused throughput / naive throughput), paired medians */
  fusedVsNaive: Record<number, number>;
  /** per batch: InRa (λ = 0.5) step / single model step */
  inraOverhead: Record<number, number>;
  /** per batch: InRa rows at λ = 1 and λ = 0 / single model */
  oneBranch: Record<number, { lambda1: number; lambda0: number }>;
}

interface Variant {
  name: string;
  runner: GraphRunner;
  rows: RowAllocator;
  lambda: number;
}

async function open(mode: GraphMode, dir: string): Promise<{ session: ModelSession; manifest: GraphManifest }> {
  const files = ensureGraph(
    { mode, floatType: 'float32', maxContext: 1024, model: openCheckpoint(dir) },
    join(BENCH_ROOT, 'graphs'),
  );
  return { session: await ModelSession.open(files.modelPath, { device: 'cpu' }), manifest: files.manifest };
}

/** A variant with its own caches over a shared session. */
function variant(name: string, g: { session: ModelSession; manifest: GraphManifest }, lambda: number): Variant {
  const runner = new GraphRunner(g.session, g.manifest);
  return { name, runner, rows: new RowAllocator(runner), lambda };
}

/** Runs a–c for a preset. */
export async function graphBench(
  preset: string,
  batches: number[],
  rounds: number,
  log: (s: string) => void,
): Promise<GraphBenchResult> {
  const { base, inra } = benchModels(preset, log);
  log(`${preset}: building/opening graphs`);
  const single = await open('single', base);
  const fused = await open('inra', inra);
  const naive = await open('naive-inra', inra);
  const variants: Variant[] = [
    variant('single', single, 1),
    variant('inra λ=0.5', fused, 0.5),
    variant('naive λ=0.5', naive, 0.5),
    variant('inra λ=1', fused, 1),
    variant('inra λ=0', fused, 0),
  ];
  const result: GraphBenchResult = { preset, rows: [], fusedVsNaive: {}, inraOverhead: {}, oneBranch: {} };
  const vocab = single.manifest.vocabSize;
  for (const B of batches) {
    log(`${preset}: batch ${B}`);
    // each variant gets B sequences with 64-token prompts, prefilled once
    const state = new Map<string, RowHandle[]>();
    for (const v of variants) {
      const handles = Array.from({ length: B }, () => v.rows.add(branchesFor(v.runner.manifest.mode, [v.lambda])));
      const plan = v.rows.prefillPlan(
        handles.map((handle, i) => ({
          handle,
          tokens: Array.from({ length: 64 }, (_, k) => (k * 31 + i * 7) % vocab),
          lambdas: [v.lambda],
        })),
      );
      await v.runner.step(plan);
      v.rows.commit(plan);
      state.set(v.name, handles);
    }
    const steps = Object.fromEntries(
      variants.map((v) => [
        v.name,
        async () => {
          const next = new Map(
            state.get(v.name)!.map((h, i) => [h.id, { token: (i * 13 + h.length) % vocab, lambdas: [v.lambda] }]),
          );
          const plan = v.rows.decodePlan(next);
          await v.runner.step(plan);
          v.rows.commit(plan);
        },
      ]),
    );
    const samples = await interleaved(steps, rounds, 3);
    for (const v of variants) {
      const timing = summarize(samples[v.name]);
      result.rows.push({ preset, batch: B, variant: v.name, timing, tokensPerSecond: (B * 1000) / timing.medianMs });
    }
    result.fusedVsNaive[B] = pairedRatio(samples['naive λ=0.5'], samples['inra λ=0.5']);
    result.inraOverhead[B] = pairedRatio(samples['inra λ=0.5'], samples.single);
    result.oneBranch[B] = {
      lambda1: pairedRatio(samples['inra λ=1'], samples.single),
      lambda0: pairedRatio(samples['inra λ=0'], samples.single),
    };
    for (const v of variants) for (const h of state.get(v.name)!) v.rows.remove(h);
  }
  for (const g of [single, fused, naive]) await g.session.release();
  return result;
}
