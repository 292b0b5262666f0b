/** Builds graphs for tests and runs whole sequences through them with the real session and caches. */
import { join } from 'node:path';
import { openCheckpoint, type Checkpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { ensureGraph } from '../../../gpu-backend/src/graph/build.ts';
import type { GraphSpec } from '../../../gpu-backend/src/graph/model-graph.ts';
import type { GraphMode } from '../../../gpu-backend/src/graph/model-graph.ts';
import type { QuantSpec } from '../../../gpu-backend/src/graph/quantize.ts';
import { GraphRunner } from '../../../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../../../gpu-backend/src/engine/rows.ts';
import { ModelSession } from '../../../gpu-backend/src/ort/session.ts';
import { syntheticInra } from '../../../gpu-backend/src/make/synthetic.ts';
import { tempDir, tinyCheckpoint } from './models.ts';

/** The checkpoints of the one-branch-row tests on top of `base`: a synthetic InRa model, or an aligned/reference pair. */
export function oneBranchCheckpoints(
  mode: 'inra' | 'fusion',
  base: string,
  seed: number,
): { model?: string; aligned?: string; reference?: string } {
  if (mode === 'inra') {
    const trained = join(tempDir(), 't');
    syntheticInra(base, trained, seed, 0.05);
    return { model: trained };
  }
  return { aligned: tinyCheckpoint({ arch: 'qwen2', seed: seed + 11 }), reference: base };
}

/** A graph ready to run, with its row allocator. */
export interface TestGraph {
  runner: GraphRunner;
  rows: RowAllocator;
  vocab: number;
}

/** Builds and opens a float32 CPU graph (with `quant`: int8/int4 weights in it). */
export async function openGraph(
  mode: GraphMode,
  ckpts: { model?: string; aligned?: string; reference?: string; inra?: number },
  maxContext = 128,
  withLoop = false,
  quant?: QuantSpec,
): Promise<TestGraph> {
  const open = (d?: string): Checkpoint | undefined =>
    d ? openCheckpoint(d, ckpts.inra ? { inraAdapterLayers: ckpts.inra } : {}) : undefined;
  const spec: GraphSpec = {
    mode,
    floatType: 'float32',
    maxContext,
    model: open(ckpts.model),
    aligned: open(ckpts.aligned),
    reference: open(ckpts.reference),
    quant,
  };
  const cache = tempDir('realign-graph-');
  const files = ensureGraph(spec, cache);
  const session = await ModelSession.open(files.modelPath, { device: 'cpu', threads: 1 });
  const runner = new GraphRunner(session, files.manifest);
  if (withLoop) {
    const loop = ensureGraph(spec, cache, undefined, 'decode-loop');
    runner.attachLoop(await ModelSession.open(loop.modelPath, { device: 'cpu', threads: 1 }), loop.manifest);
  }
  return { runner, rows: new RowAllocator(runner), vocab: files.manifest.vocabSize };
}

/** One sequence to prefill: its prompt and the λ values to read out (one output row each). */
export interface SeqSpec {
  tokens: number[];
  lambdas: number[];
  /** compute both branches even where λ ∈ {0, 1} would need one */
  bothBranches?: boolean;
}

/** Logits per sequence and λ: [seq][λ index] → Float32Array [P*V]. */
export type SeqLogits = Float32Array[][];

/** Prefills sequences in one batch; `all` projects every position (P = longest prompt). */
export async function prefill(
  t: TestGraph,
  seqs: SeqSpec[],
  all = false,
): Promise<{ handles: RowHandle[]; logits: SeqLogits; P: number }> {
  const handles = seqs.map((s) => t.rows.add(branchesFor(t.runner.manifest.mode, s.lambdas, s.bothBranches)));
  const plan = t.rows.prefillPlan(
    seqs.map((s, i) => ({ handle: handles[i], tokens: s.tokens, lambdas: s.lambdas })),
    all,
  );
  const res = await t.runner.step(plan);
  t.rows.commit(plan);
  return {
    handles,
    logits: split(
      res.logits,
      seqs.map((s) => s.lambdas.length),
      res.positions * res.vocabSize,
    ),
    P: res.positions,
  };
}

/** One decode step for every live sequence. */
export async function decode(
  t: TestGraph,
  next: Map<number, { token: number; lambdas: number[] }>,
  order: RowHandle[],
): Promise<SeqLogits> {
  const plan = t.rows.decodePlan(next);
  const res = await t.runner.step(plan);
  t.rows.commit(plan);
  // outputs come in the allocator's sequence order; regroup by the caller's order
  const perSeq = split(
    res.logits,
    plan.handles.map((h) => next.get(h.id)!.lambdas.length),
    res.vocabSize,
  );
  const byId = new Map(plan.handles.map((h, i) => [h.id, perSeq[i]]));
  return order.map((h) => byId.get(h.id)!);
}

function split(all: Float32Array, counts: number[], rowSize: number): SeqLogits {
  const out: SeqLogits = [];
  let at = 0;
  for (const c of counts) {
    const rows: Float32Array[] = [];
    for (let k = 0; k < c; k++) rows.push(all.slice((at + k) * rowSize, (at + k + 1) * rowSize));
    out.push(rows);
    at += c;
  }
  return out;
}

/** Argmax of a logit row. */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Random token ids. */
export function randomTokens(n: number, vocab: number, rand: () => number = Math.random): number[] {
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}
