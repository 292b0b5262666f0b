/**
 * Is a random model's top-1 this sensitive to any weight noise the size of int8 rounding? Float32 graphs only: the
 * `small` preset against itself with N(0, (0.005σ)²) noise on every weight but the norms (int8 block-32 rounding of
 * N(0, σ²) weights has RMS ≈ 2.2σ/127/√12 ≈ 0.005σ), top-1 agreement and relative logit error over 512 positions.
 *
 *   node --import tsx bench/quantized-noise.ts
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { PRESETS } from '../gpu-backend/src/make/presets.ts';
import { hfConfig, perturbCheckpoint, writeRandomCheckpoint } from '../gpu-backend/src/make/synthetic.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
const root = mkdtempSync(join(tmpdir(), 'q17noise-'));
const dir = join(root, 'm');
mkdirSync(dir);
const preset = PRESETS.small;
writeRandomCheckpoint(dir, hfConfig('qwen2', preset, 'F32', { bos: 1, eos: [2] }), 17, 'F32');
const sigma = 1 / Math.sqrt(preset.hiddenSize);
const noisy = join(root, 'n');
// int8 block-32 rounding error of N(0, σ²) weights: RMS ≈ (max|w| over 32 ≈ 2.2σ)/127/√12 ≈ 0.005σ
perturbCheckpoint(dir, noisy, (n) => !n.includes('norm'), 3, 0.005 * sigma);
const P = 512;
const V = preset.vocabSize;
let s = 5;
const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
const prompt = Array.from({ length: P }, () => Math.floor(rand() * V));
const out: Float32Array[] = [];
for (const d of [dir, noisy]) {
  const f = ensureGraph({ mode: 'single', floatType: 'float32', maxContext: 600, model: openCheckpoint(d) }, join(root, 'g'));
  const r = new GraphRunner(await ModelSession.open(f.modelPath, { device: 'cpu', threads: 2 }), f.manifest);
  const a = new RowAllocator(r);
  const h = a.add(branchesFor('single', [1]));
  out.push((await r.step(a.prefillPlan([{ handle: h, tokens: prompt, lambdas: [1] }], true))).logits.slice(0, P * V));
}
let agree = 0;
let err = 0;
for (let p = 0; p < P; p++) {
  let ia = 0,
    ib = 0,
    num = 0,
    den = 0;
  for (let i = 0; i < V; i++) {
    const x = out[1][p * V + i],
      y = out[0][p * V + i];
    if (x > out[1][p * V + ia]) ia = i;
    if (y > out[0][p * V + ib]) ib = i;
    num = Math.max(num, Math.abs(x - y));
    den = Math.max(den, Math.abs(y));
  }
  if (ia === ib) agree++;
  err += num / den;
}
console.log(
  `float32 with N(0, (0.005σ)²) weight noise: top-1 agreement ${((100 * agree) / P).toFixed(2)}%, mean rel. logit error ${(err / P).toExponential(2)}`,
);
rmSync(root, { recursive: true, force: true });
