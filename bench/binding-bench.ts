/**
 * Issue 14, CPU: realign's own ONNX Runtime binding (the engine's path: IoBinding, KV caches bound in place) against
 * the old path (onnxruntime-node's JS API with the KV caches fed from JS memory, bench/lib/legacy-runner.ts), decode
 * steps of the same InRa graph and the same step plans, measured in turn in one process with the same session
 * settings; and the host↔device bytes one decode step moves at batch 32, as the binding counts them. Beside it, at
 * batch 32: the step graph with the sampling block (GraphSpec.deviceSampling), its bytes per decode step when no row
 * asks for logprobs, and the cost of sampled decoding against greedy, step + sampling, on the host sampler and on the
 * device block (target ≤ 1.1×). The host sampler runs as the engine runs it (engine/host-sampling.ts: sampled rows
 * drawn on the engine thread and its draw thread), each batch's greedy / sampled / sampled-without-the-draw-thread
 * steps in turn in their own run.
 *
 *   node --import tsx bench/binding-bench.ts [--rounds N]      (also part of `npm run bench`)
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { GraphRunner, type SamplingFeed } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import type { GraphSpec } from '../gpu-backend/src/graph/model-graph.ts';
import { hostSample, type HostRow } from '../gpu-backend/src/engine/host-sampling.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import type { DrawJob } from '../gpu-backend/src/sampling/draw-bounded.ts';
import { DrawPool, type DrawRoundStats } from '../gpu-backend/src/sampling/draw-pool.ts';
import { samplingParams, type SamplingParams } from '../gpu-backend/src/sampling/params.ts';
import { SequenceSampler } from '../gpu-backend/src/sampling/sampler.ts';
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
  /**
   * The engine's CPU path (device_sampling auto = off on the CPU): decode step + the host sampler choosing each row's
   * token, all rows greedy against all rows sampled (T 0.8, top_p 0.9), paired; per batch of `batches` and at
   * `bytesBatch` (target ≤ 1.1×)
   */
  hostSampling: { batch: number; greedy: Timing; sampled: Timing; ratio: number; cpuRatio?: number; aloneRatio?: number }[];
  /** the host path's draw thread (sampling/draw-pool.ts): rows it drew of all bounded rows; null: one core */
  drawThread?: DrawRoundStats | null;
  /** at `bytesBatch` rows: the step graph with the sampling block */
  deviceSampling?: {
    bytesPerStep: { toDevice: number; fromDevice: number };
    /** decode step + choosing the tokens, greedy and sampled rows; ratio = sampled / greedy (paired) */
    host: { greedy: Timing; sampled: Timing; ratio: number };
    device: { greedy: Timing; sampled: Timing; ratio: number };
    /** share of sampled rows the block left to the host (−2: a nucleus wider than its candidates, as random weights give) */
    hostRowShare: number;
  };
}

/** A bare sampler as the engine's host path sees a sequence (engine/host-sampling.ts HostRow). */
class BenchRow implements HostRow<{ token: number }> {
  constructor(readonly sampler: SequenceSampler) {}
  step(logits: Float32Array) {
    return { token: this.sampler.next(logits).token };
  }
  prepareDraw(logits: Float32Array, into: Float32Array) {
    return this.sampler.prepareDraw(logits, into);
  }
  finishDraw(job: DrawJob, token: number) {
    return { token: this.sampler.finishDraw(job, token).token };
  }
}

/** Sampled rows of the comparison: temperature and nucleus, as a chat client sends them. */
const SAMPLED = samplingParams({ temperature: 0.8, top_p: 0.9 });
const GREEDY = samplingParams({ temperature: 0 });

/** The sampling block's inputs for B rows of `params`, u from each row's seeded stream. */
function feedFor(params: SamplingParams, samplers: SequenceSampler[]): SamplingFeed {
  const B = samplers.length;
  return {
    uniform: Float64Array.from(samplers, (s) => s.drawUniform() ?? 0),
    temperature: new Float64Array(B).fill(params.temperature),
    topP: new Float64Array(B).fill(params.top_p),
    minP: new Float64Array(B).fill(params.min_p),
    topK: new BigInt64Array(B).fill(BigInt(params.top_k)),
    top: false,
  };
}

/**
 * Runs the host sampler's greedy and sampled paths until V8 has optimised them, as they are in a running server: at
 * batch 1 the first ~20 calls of a cold sampler (0.4–9 ms each, against 0.3 ms warm, V = 32000) would otherwise be
 * many of the timed samples.
 */
function warmSampler(vocab: number, calls = 60): void {
  const row = Float32Array.from({ length: vocab }, (_, i) => 2 * Math.sin(i * 12.9898));
  for (const params of [GREEDY, SAMPLED]) {
    const s = new SequenceSampler({ ...params, seed: 1 }, []);
    for (let i = 0; i < calls; i++) s.next(row);
  }
}

interface Path {
  rows: RowAllocator;
  step: (plan: ReturnType<RowAllocator['decodePlan']>) => Promise<unknown>;
  handles: RowHandle[];
}

/** Runs the comparison on a bench preset's InRa model. */
export async function bindingBench(
  preset: string,
  batches: number[],
  bytesBatch: number,
  rounds: number,
  log: (s: string) => void,
): Promise<BindingBenchResult> {
  const { inra } = benchModels(preset, log);
  const lambda = 0.5;
  const promptTokens = 64;
  const spec: GraphSpec = { mode: 'inra', floatType: 'float32', maxContext: 1024, model: openCheckpoint(inra) };
  const files = ensureGraph(spec, join(BENCH_ROOT, 'graphs'));
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
    const plan = p.rows.prefillPlan(
      p.handles.map((handle, i) => ({
        handle,
        tokens: Array.from({ length: promptTokens }, (_, k) => (k * 31 + i * 7) % vocab),
        lambdas: [lambda],
      })),
    );
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
  // the engine's default (EngineLimits.drawThread 'auto'): a draw thread where there are two cores
  const draws = availableParallelism() >= 2 ? new DrawPool() : null;
  const samplers = (params: SamplingParams, B: number) =>
    Array.from({ length: B }, (_, i) => new SequenceSampler({ ...params, seed: 1000 + i }, []));
  /**
   * a decode step through the binding, then the host sampler on each row's logits; `cpu` collects the process' CPU
   * time of each call (ORT's threads and the sampler), a measure that the machine's other load does not inflate
   */
  const hostStep = (s: SequenceSampler[], cpu?: number[], alone = false) => {
    const rows = s.map((x) => new BenchRow(x));
    return async () => {
      const c0 = process.cpuUsage();
      const p = paths.binding;
      const next = new Map(p.handles.map((h, i) => [h.id, { token: (i * 13 + h.length) % vocab, lambdas: [lambda] }]));
      const plan = p.rows.decodePlan(next);
      const { logits } = await runner.step(plan);
      p.rows.commit(plan);
      // the engine's host path (engine/host-sampling.ts), with its draw thread unless `alone`
      hostSample(
        rows,
        logits,
        vocab,
        () => (alone ? null : draws),
        (_, err) => {
          throw err;
        },
      );
      const c = process.cpuUsage(c0);
      cpu?.push((c.user + c.system) / 1000);
    };
  };
  // the KV caches grow by one token per timed step and path: keep the rounds inside the graph's context
  const sRounds = Math.min(rounds, Math.floor((1024 - promptTokens - 16) / 4) - 4);
  const result: BindingBenchResult = {
    preset,
    lambda,
    promptTokens,
    batches: [],
    bytesBatch,
    bindingBytesPerStep: { toDevice: 0, fromDevice: 0 },
    oldBytesPerStep: 0,
    hostSampling: [],
  };
  for (const B of batches) {
    log(`binding vs old path: ${preset}, batch ${B}`);
    for (const p of Object.values(paths)) await fill(p, B);
    const samples = await interleaved({ binding: decodeStep(paths.binding), old: decodeStep(paths.old) }, rounds, 4);
    result.batches.push({
      batch: B,
      binding: summarize(samples.binding),
      old: summarize(samples.old),
      ratio: pairedRatio(samples.binding, samples.old),
    });
    log(
      `  batch ${B}: binding ${summarize(samples.binding).medianMs.toFixed(2)} ms, old ${summarize(samples.old).medianMs.toFixed(2)} ms, ratio ${pairedRatio(samples.binding, samples.old).toFixed(3)}`,
    );
    for (const p of Object.values(paths)) empty(p);
  }
  warmSampler(vocab);
  // the host sampler alone in its own runs (one session, fixed order greedy → sampled → sampled alone), so no pair
  // follows another session's step
  for (const B of [...batches, bytesBatch]) {
    log(`host sampler, sampled / greedy: batch ${B}`);
    await fill(paths.binding, B);
    const cpu: number[][] = [[], []];
    const t = await interleaved(
      {
        greedy: hostStep(samplers(GREEDY, B), cpu[0]),
        sampled: hostStep(samplers(SAMPLED, B), cpu[1]),
        sampledAlone: hostStep(samplers(SAMPLED, B), undefined, true),
      },
      sRounds,
      2,
    );
    const skip = cpu[0].length - t.greedy.length; // the warm-up rounds
    const entry = {
      batch: B,
      greedy: summarize(t.greedy),
      sampled: summarize(t.sampled),
      ratio: pairedRatio(t.sampled, t.greedy),
      cpuRatio: pairedRatio(cpu[1].slice(skip), cpu[0].slice(skip)),
      aloneRatio: pairedRatio(t.sampledAlone, t.greedy),
    };
    result.hostSampling.push(entry);
    log(
      `  batch ${B}: greedy ${entry.greedy.medianMs.toFixed(2)} ms, sampled ${entry.sampled.medianMs.toFixed(2)} ms, ratio ${entry.ratio.toFixed(3)} (CPU time ${entry.cpuRatio.toFixed(3)}; without the draw thread ${entry.aloneRatio.toFixed(3)})`,
    );
    empty(paths.binding);
  }
  log(`bytes per decode step at batch ${bytesBatch}`);
  for (const p of Object.values(paths)) await fill(p, bytesBatch);
  await decodeStep(paths.binding)();
  const before = { ...runner.transferBytes };
  const steps = 4;
  for (let i = 0; i < steps; i++) await decodeStep(paths.binding)();
  result.bindingBytesPerStep = {
    toDevice: (runner.transferBytes.toDevice - before.toDevice) / steps,
    fromDevice: (runner.transferBytes.fromDevice - before.fromDevice) / steps,
  };
  await decodeStep(paths.old)();
  result.oldBytesPerStep = legacy.lastStepBytes;
  log(
    `  binding: ${result.bindingBytesPerStep.toDevice} B in, ${result.bindingBytesPerStep.fromDevice} B out; old path: ${result.oldBytesPerStep} B`,
  );
  empty(paths.old);
  await legacy.release();

  log(`device sampling vs host sampling at batch ${bytesBatch}: bytes per step, sampled / greedy`);
  const dsFiles = ensureGraph({ ...spec, deviceSampling: true }, join(BENCH_ROOT, 'graphs'));
  const dsRunner = new GraphRunner(await ModelSession.open(dsFiles.modelPath, { device: 'cpu' }), dsFiles.manifest);
  const ds: Path = { rows: new RowAllocator(dsRunner), step: (p) => dsRunner.step(p), handles: [] };
  await fill(ds, bytesBatch);
  const host = { greedy: samplers(GREEDY, bytesBatch), sampled: samplers(SAMPLED, bytesBatch) };
  const device = { greedy: samplers(GREEDY, bytesBatch), sampled: samplers(SAMPLED, bytesBatch) };
  const deferred = { rows: 0, of: 0 };
  const deviceStep = (s: SequenceSampler[], params: SamplingParams) => async () => {
    const next = new Map(ds.handles.map((h, i) => [h.id, { token: (i * 13 + h.length) % vocab, lambdas: [lambda] }]));
    const plan = ds.rows.decodePlan(next);
    const feed = feedFor(params, s);
    const out = await dsRunner.stepSampled(plan, feed);
    ds.rows.commit(plan);
    if (params.temperature > 0) deferred.of += out.token.length;
    out.token.forEach((t, i) => {
      if (t === -2n) deferred.rows++;
      if (t === -2n) s[i].next(out.logitsRow(i), feed.uniform[i]); // a row the block leaves to the host, same u
    });
  };
  const hostSampled = hostStep(host.sampled);
  const hostGreedy = hostStep(host.greedy);
  // bytes per decode step through the block, no logprobs asked
  await deviceStep(device.greedy, GREEDY)();
  const dsBefore = { ...dsRunner.transferBytes };
  for (let i = 0; i < steps; i++) await deviceStep(i % 2 ? device.sampled : device.greedy, i % 2 ? SAMPLED : GREEDY)();
  const bytesPerStep = {
    toDevice: (dsRunner.transferBytes.toDevice - dsBefore.toDevice) / steps,
    fromDevice: (dsRunner.transferBytes.fromDevice - dsBefore.fromDevice) / steps,
  };
  log(`  device sampling: ${bytesPerStep.toDevice} B in, ${bytesPerStep.fromDevice} B out per step`);
  const t = await interleaved(
    {
      hostGreedy,
      hostSampled,
      deviceGreedy: deviceStep(device.greedy, GREEDY),
      deviceSampled: deviceStep(device.sampled, SAMPLED),
    },
    sRounds,
    2,
  );
  result.deviceSampling = {
    bytesPerStep,
    host: { greedy: summarize(t.hostGreedy), sampled: summarize(t.hostSampled), ratio: pairedRatio(t.hostSampled, t.hostGreedy) },
    device: {
      greedy: summarize(t.deviceGreedy),
      sampled: summarize(t.deviceSampled),
      ratio: pairedRatio(t.deviceSampled, t.deviceGreedy),
    },
    hostRowShare: deferred.of > 0 ? deferred.rows / deferred.of : 0,
  };
  const d = result.deviceSampling;
  log(
    `  host sampler (beside the block's steps): greedy ${d.host.greedy.medianMs.toFixed(2)} ms, sampled ${d.host.sampled.medianMs.toFixed(2)} ms, ratio ${d.host.ratio.toFixed(3)}`,
  );
  log(
    `  device block: greedy ${d.device.greedy.medianMs.toFixed(2)} ms, sampled ${d.device.sampled.medianMs.toFixed(2)} ms, ratio ${d.device.ratio.toFixed(3)} (${(100 * d.hostRowShare).toFixed(0)}% of sampled rows left to the host)`,
  );
  empty(ds);
  empty(paths.binding);
  await dsRunner.release();
  await runner.release();
  result.drawThread = draws ? draws.stats : null;
  draws?.close();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, preset: { type: 'string' } } });
  const log = (s: string) => process.stderr.write(`[binding-bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const r = await bindingBench(values.preset ?? 'small', [1, 8], 32, Number(values.rounds ?? 25), log);
  process.stdout.write(JSON.stringify(r, null, 2) + '\n');
}
