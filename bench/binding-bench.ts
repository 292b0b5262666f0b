/**
 * Issue 14, CPU: realign's own ONNX Runtime binding (the engine's path: IoBinding, KV caches bound in place) against
 * the old path (onnxruntime-node's JS API with the KV caches fed from JS memory, bench/lib/legacy-runner.ts), decode
 * steps of the same InRa graph and the same step plans, measured in turn in one process with the same session
 * settings; and the host↔device bytes one decode step moves at batch 32, as the binding counts them.
 *
 *   node --import tsx bench/binding-bench.ts [--rounds N]      (also part of `npm run bench`)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { LegacyRunner } from './lib/legacy-runner.ts';
import { BENCH_ROOT, benchModels } from './lib/models.ts';
import { interleaved, pairedRatio, summarize, type Timing } from './lib/stats.ts';

/** What the comparison measured. */
export interface BindingBenchResult {
  preset: string;
  lambda: number;
  promptTokens: number;
  /** per batch: step timings of both paths and the paired ratio binding / old (≤ 1.02 is the target) */
  batches: { batch: number; binding: Timing; old: Timing; ratio: number }[];
  /** bytes per decode step at `bytesBatch` rows: the binding's count (token ids etc. in, logits out) and the old path's */
  bytesBatch: number;
  bindingBytesPerStep: { toDevice: number; fromDevice: number };
  oldBytesPerStep: number;
}

interface Path {
  rows: RowAllocator;
  step: (plan: ReturnType<RowAllocator['decodePlan']>) => Promise<unknown>;
  handles: RowHandle[];
}

/** Runs the comparison on a bench preset's InRa model. */
export async function bindingBench(preset: string, batches: number[], bytesBatch: number, rounds: number, log: (s: string) => void): Promise<BindingBenchResult> {
  const { inra } = benchModels(preset, log);
  const lambda = 0.5;
  const promptTokens = 64;
  const files = ensureGraph({ mode: 'inra', floatType: 'float32', maxContext: 1024, model: openCheckpoint(inra) }, join(BENCH_ROOT, 'graphs'));
  const vocab = files.manifest.vocabSize;
  // the same settings for both: ORT's thread count, graph optimisation all, arena and memory pattern, no spinning
  const session = await ModelSession.open(files.modelPath, { device: 'cpu' });
  const runner = new GraphRunner(session, files.manifest);
  const legacy = await LegacyRunner.open(files.modelPath, files.manifest);
  const paths: Record<string, Path> = {
    binding: { rows: new RowAllocator(runner), step: (p) => runner.step(p), handles: [] },
    old: { rows: new RowAllocator(legacy as unknown as GraphRunner), step: (p) => legacy.step(p), handles: [] },
  };
  const fill = async (p: Path, B: number) => {
    p.handles = Array.from({ length: B }, () => p.rows.add(branchesFor('inra', [lambda])));
    const plan = p.rows.prefillPlan(p.handles.map((handle, i) => ({ handle, tokens: Array.from({ length: promptTokens }, (_, k) => (k * 31 + i * 7) % vocab), lambdas: [lambda] })));
    await p.step(plan);
    p.rows.commit(plan);
  };
  const decodeStep = (p: Path) => async () => {
    const next = new Map(p.handles.map((h, i) => [h.id, { token: (i * 13 + h.length) % vocab, lambdas: [lambda] }]));
    const plan = p.rows.decodePlan(next);
    await p.step(plan);
    p.rows.commit(plan);
  };
  const empty = (p: Path) => {
    for (const h of p.handles) p.rows.remove(h);
    p.handles = [];
  };
  const result: BindingBenchResult = { preset, lambda, promptTokens, batches: [], bytesBatch, bindingBytesPerStep: { toDevice: 0, fromDevice: 0 }, oldBytesPerStep: 0 };
  for (const B of batches) {
    log(`binding vs old path: ${preset}, batch ${B}`);
    for (const p of Object.values(paths)) await fill(p, B);
    const samples = await interleaved({ binding: decodeStep(paths.binding), old: decodeStep(paths.old) }, rounds, 4);
    result.batches.push({ batch: B, binding: summarize(samples.binding), old: summarize(samples.old), ratio: pairedRatio(samples.binding, samples.old) });
    log(`  batch ${B}: binding ${summarize(samples.binding).medianMs.toFixed(2)} ms, old ${summarize(samples.old).medianMs.toFixed(2)} ms, ratio ${pairedRatio(samples.binding, samples.old).toFixed(3)}`);
    for (const p of Object.values(paths)) empty(p);
  }
  log(`bytes per decode step at batch ${bytesBatch}`);
  for (const p of Object.values(paths)) await fill(p, bytesBatch);
  await decodeStep(paths.binding)();
  const before = { ...runner.transferBytes };
  const steps = 4;
  for (let i = 0; i < steps; i++) await decodeStep(paths.binding)();
  result.bindingBytesPerStep = { toDevice: (runner.transferBytes.toDevice - before.toDevice) / steps, fromDevice: (runner.transferBytes.fromDevice - before.fromDevice) / steps };
  await decodeStep(paths.old)();
  result.oldBytesPerStep = legacy.lastStepBytes;
  log(`  binding: ${result.bindingBytesPerStep.toDevice} B in, ${result.bindingBytesPerStep.fromDevice} B out; old path: ${result.oldBytesPerStep} B`);
  for (const p of Object.values(paths)) empty(p);
  await runner.release();
  await legacy.release();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, preset: { type: 'string' } } });
  const log = (s: string) => process.stderr.write(`[binding-bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const r = await bindingBench(values.preset ?? 'small', [1, 8], 32, Number(values.rounds ?? 25), log);
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
