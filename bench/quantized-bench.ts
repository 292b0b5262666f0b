/**
 * float32 vs int8 vs int4 weights (issue 17) side by side in one run, CPU: decode tokens/s at batch 1 (after a
 * 16-token prompt, `--steps` cached decode steps), MatMulNBits accuracy_level 0 and 4, and top-1 agreement with the
 * float32 graph over every position of a `--positions`-token prompt, with the relative logit error
 * (max |Δ| / max |z_float32| per position, the mean and the worst over positions).
 *
 *   node --import tsx bench/quantized-bench.ts [--preset small] [--positions 512] [--steps 64] [--threads 2] [--levels 0,4]
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { PRESETS } from '../gpu-backend/src/make/presets.ts';
import { hfConfig, writeRandomCheckpoint } from '../gpu-backend/src/make/synthetic.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import type { QuantSpec } from '../gpu-backend/src/graph/quantize.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'small' },
    positions: { type: 'string', default: '512' },
    steps: { type: 'string', default: '64' },
    threads: { type: 'string', default: '2' },
    levels: { type: 'string', default: '0,4' },
  },
});
const levels = values.levels!.split(',').map(Number);
const P = Number(values.positions);
const steps = Number(values.steps);
const threads = Number(values.threads);
const root = mkdtempSync(join(tmpdir(), 'realign-qbench-'));
const ckptDir = join(root, 'model');
mkdirSync(ckptDir);
const preset = { ...PRESETS[values.preset!] };
writeRandomCheckpoint(ckptDir, hfConfig(preset.architecture ?? 'qwen2', preset, 'F32', { bos: 1, eos: [2] }), 17, 'F32');
const ckpt = openCheckpoint(ckptDir);

// accuracy_level 0 of the 8-bit CPU kernel is ~100× slower than 4: `--levels 4` leaves it out on large shapes
const variants: { name: string; quant?: QuantSpec }[] = [{ name: 'float32' }];
for (const bits of [8, 4] as const)
  for (const acc of levels)
    variants.push({ name: `int${bits} (accuracy_level ${acc})`, quant: { bits, blockSize: 32, accuracyLevel: acc as 0 | 4 } });

let seed = 5;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const V = ckpt.config.vocabSize;
const prompt = Array.from({ length: P }, () => Math.floor(rand() * V));
let floatLogits: Float32Array | null = null;
const rows: string[] = [];
for (const v of variants) {
  const files = ensureGraph(
    { mode: 'single', floatType: 'float32', maxContext: Math.max(P, 16 + steps) + 8, model: ckpt, quant: v.quant },
    join(root, 'graphs'),
  );
  const session = await ModelSession.open(files.modelPath, { device: 'cpu', threads });
  const runner = new GraphRunner(session, files.manifest);
  const alloc = new RowAllocator(runner);
  // accuracy: every position of one P-token prompt
  const h = alloc.add(branchesFor('single', [1]));
  const plan = alloc.prefillPlan([{ handle: h, tokens: prompt, lambdas: [1] }], true);
  const logits = (await runner.step(plan)).logits.slice(0, P * V);
  alloc.commit(plan);
  alloc.remove(h);
  let agree = 0;
  let errSum = 0;
  let errMax = 0;
  if (!floatLogits) floatLogits = logits;
  for (let p = 0; p < P; p++) {
    const a = logits.subarray(p * V, (p + 1) * V);
    const b = floatLogits.subarray(p * V, (p + 1) * V);
    let ia = 0;
    let ib = 0;
    let num = 0;
    let den = 0;
    for (let i = 0; i < V; i++) {
      if (a[i] > a[ia]) ia = i;
      if (b[i] > b[ib]) ib = i;
      num = Math.max(num, Math.abs(a[i] - b[i]));
      den = Math.max(den, Math.abs(b[i]));
    }
    if (ia === ib) agree++;
    errSum += num / den;
    errMax = Math.max(errMax, num / den);
  }
  // speed: batch 1 decode after a 16-token prompt
  const alloc2 = new RowAllocator(runner);
  const d = alloc2.add(branchesFor('single', [1]));
  const pre = alloc2.prefillPlan([{ handle: d, tokens: prompt.slice(0, 16), lambdas: [1] }], false);
  await runner.step(pre);
  alloc2.commit(pre);
  const times: number[] = [];
  for (let s = 0; s < steps + 4; s++) {
    const dp = alloc2.decodePlan(new Map([[d.id, { token: Math.floor(rand() * V), lambdas: [1] }]]));
    const t0 = performance.now();
    await runner.step(dp);
    times.push(performance.now() - t0);
    alloc2.commit(dp);
  }
  const steady = times.slice(4).sort((x, y) => x - y);
  const median = steady[Math.floor(steady.length / 2)];
  const weightMb = Math.round(statSync(`${files.modelPath}.data`).size / 2 ** 20);
  rows.push(
    `| ${v.name} | ${weightMb} | ${median.toFixed(2)} | ${(1000 / median).toFixed(1)} | ${((100 * agree) / P).toFixed(2)}% | ${(errSum / P).toExponential(2)} | ${errMax.toExponential(2)} |`,
  );
  await session.release();
}
console.log(
  `preset ${values.preset}, CPU, ${threads} threads, batch 1, ${steps} decode steps (median), agreement over ${P} positions`,
);
console.log('| weights | weight MB | ms/step | tokens/s | top-1 = float32 | rel. logit err (mean) | (max) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
rmSync(root, { recursive: true, force: true });
