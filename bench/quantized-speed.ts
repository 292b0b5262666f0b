/**
 * Issue 17's speed rows: float32 / int8 / int4 weights of one base model side by side (decode steps taken in turn,
 * medians), CPU, per batch size, with each row's ms/step against its floor — the weight bytes one decode step reads
 * divided by the memory read bandwidth measured in the same process, in turn with the steps. Three read probes run in
 * every round, with the sessions' options: lib/matmul-probe.ts 'chain' (62 dependent float32 MatMuls [1, 896] ×
 * [896, 4864] × [4864, 896] … over prepacked initializers, 1.08 GB: a decode step's own kernel, op sizes and access
 * pattern), its 'single' probe (one [1, 4096] × [4096, 65536] MatMul over a 1 GiB initializer) and the older
 * ReduceSum over a 1 GiB input (openBandwidthProbe). A round's floor uses the fastest of the three in that round
 * (none of them is a strict bound alone: on a quiet machine the single MatMul and ReduceSum read fastest, under load
 * the chain did), and each probe's own GB/s is reported.
 *
 * `npm run bench` runs this file as a child process with the allocator settings `realign` itself runs with
 * (bin/realign.js: glibc keeps freed memory instead of returning it) and the sessions get the server's options
 * (ort/session.ts sessionConfig; intra-op threads: ONNX Runtime's choice, as the server's default).
 *
 *   node --import tsx bench/quantized-speed.ts [--presets qwen2.5-0.5b,r1-distill-qwen-1.5b] [--batches 1,8]
 *     [--rounds 16] [--json out.json]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { initModel } from '../gpu-backend/src/make/init-model.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor, type RowHandle } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import { Graph } from '../gpu-backend/src/graph/ir.ts';
import { encodeOnnxModel } from '../gpu-backend/src/graph/onnx-writer.ts';
import { graphWeights, type WeightFormat } from '../gpu-backend/src/graph/quantize.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { openMatMulProbe } from './lib/matmul-probe.ts';
import { BENCH_ROOT } from './lib/models.ts';
import { interleaved, median, pairedRatio, summarize, type Timing } from './lib/stats.ts';

/** The allocator settings bin/realign.js starts the server with (kept equal to them). */
export const SERVER_MALLOC_ENV = {
  MALLOC_MMAP_THRESHOLD_: '1073741824',
  MALLOC_TRIM_THRESHOLD_: '4294967296',
  MALLOC_TOP_PAD_: '268435456',
};

/** Memory read bandwidth as ONNX Runtime's CPU threads see it. */
export interface Bandwidth {
  /** the median over every probe run of the benchmark (the runs interleaved with the decode steps) */
  GBps: number;
  /** the best run */
  bestGBps: number;
  /** bytes read per run */
  bytes: number;
  runs: number;
  /** what was read: the probe's description */
  probe: string;
}

/**
 * A memory read probe: a ReduceSum over the rows of a 1 GiB float32 tensor (far beyond any cache) in a session with
 * the server's options (so the same intra-op threads split it). A decode step's weight reads are sequential streams
 * of the same kind. `run()` returns the ms of one pass.
 */
export function openBandwidthProbe(): { bytes: number; run: () => Promise<number>; release: () => Promise<void> } {
  const rows = 256;
  const cols = 2 ** 20;
  const g = new Graph('bandwidth-probe');
  const x = g.input('x', 'float32', [rows, cols]);
  const axes = g.constant('int64', [1]);
  g.output(g.op1('ReduceSum', [x, axes], { keepdims: { i: 0 } }, '/ReduceSum'), 'sum', 'float32', [rows]);
  const session = ModelSession.fromBytes(encodeOnnxModel(g), { device: 'cpu' });
  const data = new Float32Array(rows * cols).fill(1);
  return {
    bytes: data.byteLength,
    run: async () => {
      const t0 = performance.now();
      const { sum } = await session.run({ x: { type: 'float32', data, dims: [rows, cols] } }, ['sum']);
      const dt = performance.now() - t0;
      if ((sum.data as Float32Array)[0] !== cols) throw new Error('bandwidth probe: wrong sum');
      return dt;
    },
    release: () => session.release(),
  };
}

/** One preset × batch × weight format. */
export interface QuantSpeedRow {
  preset: string;
  batch: number;
  weights: WeightFormat;
  /** weight bytes one decode step reads: every initializer but the embedding table (B rows of it are gathered) */
  bytesPerStep: number;
  timing: Timing;
  tokensPerSecond: number;
  /** bytesPerStep / the median bandwidth of the probe runs taken in turn with these steps */
  floorMs: number;
  /** step ms ÷ that round's floor (bytesPerStep over the fastest probe run of the same round), median over rounds */
  overFloor: number;
  /** the fastest step ÷ the lowest round floor (the least-contended samples of each) */
  overFloorBest: number;
  /** step ms ÷ the floor from the chain probe run of the same round alone, median over rounds */
  overChainFloor: number;
  /** step ms ÷ the floor from the ReduceSum probe run of the same round, median over rounds (the older probe) */
  overReduceSumFloor: number;
  /** process CPU time of the timed steps: system share of user + system */
  systemShare: number;
  /**
   * process CPU time (user + system) per weight byte of these steps ÷ that of the chain probe's runs, over the same
   * rounds: how much more CPU work a step spends per byte than the pure weight stream, a ratio that time slicing by
   * other processes on the cores does not move (it counts no time spent descheduled)
   */
  cpuOverFloor: number;
  /** minor page faults per timed step */
  minorFaultsPerStep: number;
}

export interface QuantSpeedResult {
  /** the floors' bandwidth: per round, the fastest of the probes */
  bandwidth: Bandwidth;
  /** each probe's own (chain, single MatMul, ReduceSum), measured in turn with the same steps */
  probes: Bandwidth[];
  threads: string;
  malloc: Record<string, string | null>;
  rows: QuantSpeedRow[];
  /** paired median ratios of float32's step time to int8's and int4's (= tokens/s ratios) */
  speedup: { preset: string; batch: number; int8: number; int4: number }[];
}

const FORMATS: WeightFormat[] = ['float32', 'int8', 'int4'];

/** A float32 base checkpoint of a preset, made once under the bench folder (the same one graph-bench uses). */
function baseModel(preset: string, log: (s: string) => void): string {
  const dir = join(BENCH_ROOT, 'models', preset);
  if (!existsSync(dir)) {
    log(`init-model ${preset}`);
    initModel(dir, { arch: 'qwen2', preset, seed: 1, dtype: 'F32' });
  }
  return dir;
}

/** Bytes of the embedding table's initializer in a graph of this format (not read whole by a decode step). */
function embeddingBytes(V: number, D: number, format: WeightFormat, blockSize = 32): number {
  if (format === 'float32') return V * D * 4;
  const bits = format === 'int8' ? 8 : 4;
  if (D % blockSize !== 0) return V * D * 4;
  return (V * D * bits) / 8 + V * (D / blockSize) * 4;
}

export async function quantizedSpeed(
  presets: string[],
  batches: number[],
  rounds: number,
  log: (s: string) => void,
): Promise<QuantSpeedResult> {
  const probe = await openMatMulProbe('chain');
  const singleProbe = await openMatMulProbe('single');
  const sumProbe = { name: 'ReduceSum over a [256, 2^20] float32 input (1 GiB)', ...openBandwidthProbe() };
  const probeMs: number[] = [];
  const singleMs: number[] = [];
  const sumProbeMs: number[] = [];
  const bw = (p: { bytes: number; name: string }): Bandwidth => ({
    GBps: NaN,
    bestGBps: NaN,
    bytes: p.bytes,
    runs: 0,
    probe: p.name,
  });
  const probes = [bw(probe), bw(singleProbe), bw(sumProbe)];
  const bandwidth = bw({ bytes: NaN, name: 'per round, the fastest of the three probes' });
  const floorGBps: number[] = [];
  const result: QuantSpeedResult = {
    bandwidth,
    probes,
    threads: "ONNX Runtime's default (as the server)",
    malloc: Object.fromEntries(Object.keys(SERVER_MALLOC_ENV).map((k) => [k, process.env[k] ?? null])),
    rows: [],
    speedup: [],
  };
  for (const preset of presets) {
    const ckpt = openCheckpoint(baseModel(preset, log));
    const { vocabSize: V, hiddenSize: D } = ckpt.config;
    const variants: { weights: WeightFormat; runner: GraphRunner; rows: RowAllocator; bytes: number }[] = [];
    for (const weights of FORMATS) {
      log(`${preset} ${weights}: building/opening the graph`);
      const { floatType, quant } = graphWeights(weights === 'float32' ? undefined : { format: weights }, 'cpu');
      const files = ensureGraph({ mode: 'single', floatType, maxContext: 1024, model: ckpt, quant }, join(BENCH_ROOT, 'graphs'));
      const session = await ModelSession.open(files.modelPath, { device: 'cpu' });
      const runner = new GraphRunner(session, files.manifest);
      const bytes = statSync(`${files.modelPath}.data`).size - embeddingBytes(V, D, weights);
      variants.push({ weights, runner, rows: new RowAllocator(runner), bytes });
    }
    for (const B of batches) {
      log(`${preset}: batch ${B}`);
      const state = new Map<WeightFormat, RowHandle[]>();
      for (const v of variants) {
        const handles = Array.from({ length: B }, () => v.rows.add(branchesFor('single', [1])));
        const plan = v.rows.prefillPlan(
          handles.map((handle, i) => ({
            handle,
            tokens: Array.from({ length: 64 }, (_, k) => (k * 31 + i * 7) % V),
            lambdas: [1],
          })),
        );
        await v.runner.step(plan);
        v.rows.commit(plan);
        state.set(v.weights, handles);
      }
      const usage = new Map(FORMATS.map((f) => [f, { user: 0, system: 0, faults: 0 }]));
      const steps = Object.fromEntries(
        variants.map((v) => [
          v.weights,
          async () => {
            const next = new Map(state.get(v.weights)!.map((h, i) => [h.id, { token: (i * 13 + h.length) % V, lambdas: [1] }]));
            const plan = v.rows.decodePlan(next);
            const u0 = process.resourceUsage();
            await v.runner.step(plan);
            const u1 = process.resourceUsage();
            const u = usage.get(v.weights)!;
            u.user += u1.userCPUTime - u0.userCPUTime;
            u.system += u1.systemCPUTime - u0.systemCPUTime;
            u.faults += u1.minorPageFault - u0.minorPageFault;
            v.rows.commit(plan);
          },
        ]),
      );
      // the probe runs in turn with the steps, so that each round's floor is measured under that round's conditions
      const probeUsage = { cpu: 0 };
      steps.probe = async () => {
        const u0 = process.resourceUsage();
        await probe.run();
        const u1 = process.resourceUsage();
        probeUsage.cpu += u1.userCPUTime - u0.userCPUTime + u1.systemCPUTime - u0.systemCPUTime;
      };
      steps.singleProbe = async () => {
        await singleProbe.run();
      };
      steps.sumProbe = async () => {
        await sumProbe.run();
      };
      const samples = await interleaved(steps, rounds, 3);
      probeMs.push(...samples.probe);
      singleMs.push(...samples.singleProbe);
      sumProbeMs.push(...samples.sumProbe);
      // GB/s of the fastest probe in each round
      const roundGBps = samples.probe.map(
        (ms, i) =>
          Math.max(probe.bytes / ms, singleProbe.bytes / samples.singleProbe[i], sumProbe.bytes / samples.sumProbe[i]) / 1e6,
      );
      floorGBps.push(...roundGBps);
      for (const v of variants) {
        const timing = summarize(samples[v.weights]);
        const roundFloors = roundGBps.map((gbps) => v.bytes / gbps / 1e6);
        const floorMs = median(roundFloors);
        const chainFloors = samples.probe.map((ms) => (ms * v.bytes) / probe.bytes);
        const sumFloors = samples.sumProbe.map((ms) => (ms * v.bytes) / sumProbe.bytes);
        const u = usage.get(v.weights)!;
        result.rows.push({
          preset,
          batch: B,
          weights: v.weights,
          bytesPerStep: v.bytes,
          timing,
          tokensPerSecond: (B * 1000) / timing.medianMs,
          floorMs,
          overFloor: pairedRatio(samples[v.weights], roundFloors),
          overFloorBest: Math.min(...samples[v.weights]) / Math.min(...roundFloors),
          overChainFloor: pairedRatio(samples[v.weights], chainFloors),
          overReduceSumFloor: pairedRatio(samples[v.weights], sumFloors),
          systemShare: u.system / (u.user + u.system),
          cpuOverFloor: (u.user + u.system) / v.bytes / (probeUsage.cpu / probe.bytes),
          // the warm-up rounds are counted in the usage too
          minorFaultsPerStep: u.faults / (rounds + 3),
        });
      }
      result.speedup.push({
        preset,
        batch: B,
        int8: pairedRatio(samples.float32, samples.int8),
        int4: pairedRatio(samples.float32, samples.int4),
      });
      for (const v of variants) for (const h of state.get(v.weights)!) v.rows.remove(h);
    }
    for (const v of variants) await v.runner.release();
  }
  for (const p of [probe, singleProbe, sumProbe]) await p.release();
  for (const [b, ms] of [
    [probes[0], probeMs],
    [probes[1], singleMs],
    [probes[2], sumProbeMs],
  ] as const) {
    b.GBps = b.bytes / (median(ms) / 1000) / 1e9;
    b.bestGBps = b.bytes / (Math.min(...ms) / 1000) / 1e9;
    b.runs = ms.length;
  }
  bandwidth.GBps = median(floorGBps);
  bandwidth.bestGBps = Math.max(...floorGBps);
  bandwidth.runs = floorGBps.length;
  for (const b of [...probes, bandwidth])
    log(`bandwidth ${b.GBps.toFixed(1)} GB/s (best ${b.bestGBps.toFixed(1)}, median of ${b.runs} runs): ${b.probe}`);
  return result;
}

/**
 * quantizedSpeed in a child process started with the server's allocator settings (they are read at process start),
 * its stderr passed through; `npm run bench`'s way in.
 */
export async function quantizedSpeedInChild(presets: string[], batches: number[], rounds: number): Promise<QuantSpeedResult> {
  const dir = mkdtempSync(join(tmpdir(), 'realign-qspeed-'));
  const json = join(dir, 'result.json');
  try {
    const args = ['--import', 'tsx', import.meta.filename, '--presets', presets.join(','), '--batches', batches.join(',')];
    const child = spawn(process.execPath, [...args, '--rounds', String(rounds), '--json', json], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...SERVER_MALLOC_ENV },
    });
    const code = await new Promise<number | null>((res, rej) => child.on('exit', res).on('error', rej));
    if (code !== 0) throw new Error(`bench/quantized-speed.ts exited with ${code}`);
    return JSON.parse(readFileSync(json, 'utf8')) as QuantSpeedResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The rows as a markdown table. */
export function speedTable(r: QuantSpeedResult): string {
  const lines = [
    `Memory read bandwidth: three probes opened with the sessions' options and threads, each run once in every round of decode steps (so under that round's load)` +
      (r.probes ?? []).map((b) => `; ${b.probe}: median ${b.GBps.toFixed(1)} GB/s (best ${b.bestGBps.toFixed(1)})`).join('') +
      `. A round's floor = weight bytes per step ÷ the fastest probe of that round (median over rounds: **${r.bandwidth.GBps.toFixed(1)} GB/s**, best ${r.bandwidth.bestGBps.toFixed(1)}); floor ms = the median round floor; × floor = the median over rounds of step time ÷ that round's floor; × floor (best) = fastest step ÷ lowest round floor; × chain / × ReduceSum floor = the same median ratio against that one probe alone; CPU time per byte ÷ chain = the steps' process CPU time per weight byte over the chain probe's (time spent descheduled is not CPU time, so other processes' load moves it little).`,
    '',
    '| shape | batch | weights | GB read/step | ms/step (p10–p90) | floor ms | × floor | × floor (best) | × chain floor | × ReduceSum floor | tokens/s | × float32 tokens/s | CPU time per byte ÷ chain | sys share | minor faults/step |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of r.rows) {
    const s = r.speedup.find((x) => x.preset === row.preset && x.batch === row.batch);
    const ratio = row.weights === 'float32' ? 1 : (s?.[row.weights as 'int8' | 'int4'] ?? NaN);
    lines.push(
      `| ${row.preset} | ${row.batch} | ${row.weights} | ${(row.bytesPerStep / 1e9).toFixed(3)} | ${row.timing.medianMs.toFixed(1)} (${row.timing.p10Ms.toFixed(1)}–${row.timing.p90Ms.toFixed(1)}) | ${row.floorMs.toFixed(1)} | ${row.overFloor.toFixed(2)} | ${row.overFloorBest?.toFixed(2) ?? '–'} | ${row.overChainFloor?.toFixed(2) ?? '–'} | ${row.overReduceSumFloor?.toFixed(2) ?? '–'} | ${row.tokensPerSecond.toFixed(1)} | ${ratio.toFixed(2)} | ${row.cpuOverFloor?.toFixed(2) ?? '–'} | ${(100 * row.systemShare).toFixed(0)}% | ${row.minorFaultsPerStep.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      presets: { type: 'string', default: 'qwen2.5-0.5b,r1-distill-qwen-1.5b' },
      batches: { type: 'string', default: '1,8' },
      rounds: { type: 'string', default: '16' },
      json: { type: 'string' },
    },
  });
  const log = (s: string) => process.stderr.write(`[quantized-speed ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const r = await quantizedSpeed(values.presets!.split(','), values.batches!.split(',').map(Number), Number(values.rounds), log);
  if (values.json) writeFileSync(values.json, JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(speedTable(r) + '\n');
}
