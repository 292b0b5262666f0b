/**
 * Issue 17: how far int8/int4 graphs move a random qwen2.5-0.5b-shape model's next-token choice, and why. Over every
 * position of one 512-token random prompt (one prefill projecting all positions), against the float32 graph:
 *
 * - top-1 agreement, and the relative logit error max_i |z_q − z| / max_i |z| per position (mean and p90);
 * - float32's top-1 margin (top-1 − top-2 logit) per position, against the variant's per-position max |Δz|: a
 *   position can only flip when its margin is below 2·max |Δz|, so the share of such positions says how much of the
 *   disagreement the model's tiny margins explain; agreement is also given on the positions whose margin exceeds
 *   twice the p90 of max |Δz| over all positions (a fixed bound, labelled as such — not the metric);
 * - variants: int8 and int4 at accuracy_level 4 (the CPU default, activations quantized to int8 per block) and 0
 *   (activations in float32: only the weights' rounding), with and without the embedding table and lm_head kept in
 *   float32; and the float32 graph of the same checkpoint with Gaussian noise of int8 rounding's measured RMS added
 *   to every quantized weight (no quantizer involved: the model's own sensitivity to that much weight error).
 *
 *   node --import tsx bench/quantized-agreement.ts [--positions 512] [--out bench/results/quantized-agreement.json]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint, type Checkpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { initModel } from '../gpu-backend/src/make/init-model.ts';
import { perturbCheckpoint } from '../gpu-backend/src/make/synthetic.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import { roundTrip, type QuantSpec } from '../gpu-backend/src/graph/quantize.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { BENCH_ROOT } from './lib/models.ts';
import { percentile } from './lib/stats.ts';

const PRESET = 'qwen2.5-0.5b';

export interface AgreementRow {
  name: string;
  agreement: number;
  relErrMean: number;
  relErrP90: number;
  /** share of positions whose float32 margin is below 2·max |Δz| there (could flip) */
  flippable: number;
  /** agreement on positions with margin > 2 · p90(max |Δz|) (labelled: a subset), and how many */
  agreementAboveBound: number;
  positionsAboveBound: number;
  maxAbsErrP50: number;
}

export interface AgreementResult {
  date: string;
  preset: string;
  positions: number;
  /** float32 margins (top-1 − top-2 logit): percentiles, and the per-position logit std for scale */
  margin: { p10: number; p50: number; p90: number };
  logitStdMean: number;
  /** measured RMS of int8 rounding error / RMS of the weights (layer 0 q_proj), the noise variant's size */
  int8ErrorRms: number;
  int4ErrorRms: number;
  rows: AgreementRow[];
}

function baseModel(): string {
  const dir = join(BENCH_ROOT, 'models', PRESET);
  if (!existsSync(dir)) initModel(dir, { arch: 'qwen2', preset: PRESET, seed: 1, dtype: 'F32' });
  return dir;
}

async function allLogits(ckpt: Checkpoint, prompt: number[], graphs: string, quant?: QuantSpec): Promise<Float32Array> {
  const files = ensureGraph({ mode: 'single', floatType: 'float32', maxContext: 1024, model: ckpt, quant }, graphs);
  const session = await ModelSession.open(files.modelPath, { device: 'cpu' });
  const runner = new GraphRunner(session, files.manifest);
  try {
    const rows = new RowAllocator(runner);
    const h = rows.add(branchesFor('single', [1]));
    const plan = rows.prefillPlan([{ handle: h, tokens: prompt, lambdas: [1] }], true);
    return (await runner.step(plan)).logits.slice(0, prompt.length * ckpt.config.vocabSize);
  } finally {
    await runner.release();
  }
}

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / a.length);
}

/** RMS of (ŵ − w) / RMS of w for one matrix. */
function roundingError(ckpt: Checkpoint, bits: 4 | 8): number {
  const name = 'model.layers.0.self_attn.q_proj.weight';
  const [N, K] = ckpt.store.entry(name).shape;
  const w = ckpt.store.readFloat32(name);
  const q = roundTrip(w, N, K, bits, 32);
  const d = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) d[i] = q[i] - w[i];
  return rms(d) / rms(w);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      positions: { type: 'string', default: '512' },
      out: { type: 'string', default: resolve(import.meta.dirname, 'results/quantized-agreement.json') },
    },
  });
  const log = (s: string) => process.stderr.write(`[quantized-agreement ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const P = Number(values.positions);
  const dir = baseModel();
  const ckpt = openCheckpoint(dir);
  const V = ckpt.config.vocabSize;
  const graphs = join(BENCH_ROOT, 'graphs');
  let seed = 5;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const prompt = Array.from({ length: P }, () => Math.floor(rand() * V));

  log('float32');
  const ref = await allLogits(ckpt, prompt, graphs);
  const margins: number[] = [];
  let stdSum = 0;
  for (let p = 0; p < P; p++) {
    const z = ref.subarray(p * V, (p + 1) * V);
    let a = -Infinity;
    let b = -Infinity;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < V; i++) {
      const x = z[i];
      if (x > a) {
        b = a;
        a = x;
      } else if (x > b) b = x;
      s += x;
      s2 += x * x;
    }
    margins.push(a - b);
    stdSum += Math.sqrt(s2 / V - (s / V) ** 2);
  }
  const result: AgreementResult = {
    date: new Date().toISOString(),
    preset: PRESET,
    positions: P,
    margin: { p10: percentile(margins, 10), p50: percentile(margins, 50), p90: percentile(margins, 90) },
    logitStdMean: stdSum / P,
    int8ErrorRms: roundingError(ckpt, 8),
    int4ErrorRms: roundingError(ckpt, 4),
    rows: [],
  };

  const compare = (name: string, z: Float32Array) => {
    let agree = 0;
    const rel: number[] = [];
    const maxAbs: number[] = [];
    let flippable = 0;
    const same: boolean[] = [];
    for (let p = 0; p < P; p++) {
      let ia = 0;
      let ib = 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < V; i++) {
        const x = z[p * V + i];
        const y = ref[p * V + i];
        if (x > z[p * V + ia]) ia = i;
        if (y > ref[p * V + ib]) ib = i;
        num = Math.max(num, Math.abs(x - y));
        den = Math.max(den, Math.abs(y));
      }
      same.push(ia === ib);
      if (ia === ib) agree++;
      rel.push(num / den);
      maxAbs.push(num);
      if (margins[p] < 2 * num) flippable++;
    }
    const bound = 2 * percentile(maxAbs, 90);
    const above = margins.map((m, p) => (m > bound ? p : -1)).filter((p) => p >= 0);
    const row: AgreementRow = {
      name,
      agreement: agree / P,
      relErrMean: rel.reduce((s, x) => s + x, 0) / P,
      relErrP90: percentile(rel, 90),
      flippable: flippable / P,
      agreementAboveBound: above.length > 0 ? above.filter((p) => same[p]).length / above.length : NaN,
      positionsAboveBound: above.length,
      maxAbsErrP50: percentile(maxAbs, 50),
    };
    result.rows.push(row);
    log(`${name}: ${JSON.stringify(row)}`);
  };

  const variants: { name: string; quant: QuantSpec }[] = [];
  for (const bits of [8, 4] as const) {
    variants.push({ name: `int${bits}`, quant: { bits, blockSize: 32, accuracyLevel: 4 } });
    variants.push({
      name: `int${bits}, embedding + lm_head float32`,
      quant: { bits, blockSize: 32, accuracyLevel: 4, floatEmbedding: true, floatLmHead: true },
    });
    variants.push({ name: `int${bits}, accuracy_level 0`, quant: { bits, blockSize: 32, accuracyLevel: 0 } });
  }
  for (const v of variants) {
    log(v.name);
    compare(v.name, await allLogits(ckpt, prompt, graphs, v.quant));
  }

  // the model's own sensitivity: float32 with N(0, (int8 RMS error · σ_w)²) on every weight int8 would round
  const tmp = mkdtempSync(join(tmpdir(), 'realign-qagree-'));
  try {
    const sigma = Math.min(0.08, 1 / Math.sqrt(ckpt.config.hiddenSize)); // synthetic.ts' weight std
    log('float32 + int8-sized weight noise: writing the perturbed checkpoint');
    perturbCheckpoint(dir, join(tmp, 'noisy'), (n) => !n.includes('norm'), 3, result.int8ErrorRms * sigma);
    compare(
      'float32 + int8-sized Gaussian weight noise',
      await allLogits(openCheckpoint(join(tmp, 'noisy')), prompt, join(tmp, 'g')),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(agreementTable(result) + '\n');
}

/** The result as markdown. */
export function agreementTable(r: AgreementResult): string {
  const lines = [
    `Random ${r.preset}-shape model (seed 1), ${r.positions} positions of one random prompt. float32's top-1 margin (top-1 − top-2 logit): p10 ${r.margin.p10.toFixed(3)}, median ${r.margin.p50.toFixed(3)}, p90 ${r.margin.p90.toFixed(3)}, against a per-position logit std of ${r.logitStdMean.toFixed(2)}. Measured rounding error RMS / weight RMS: int8 ${r.int8ErrorRms.toExponential(2)}, int4 ${r.int4ErrorRms.toExponential(2)} (block 32).`,
    '',
    '| variant | top-1 = float32 | rel. logit error (mean / p90) | median max abs Δz | positions that could flip (margin < 2·max abs Δz) | top-1 = float32 where margin > 2·p90(max abs Δz) (subset, labelled) |',
    '|---|---|---|---|---|---|',
  ];
  for (const x of r.rows)
    lines.push(
      `| ${x.name} | ${(100 * x.agreement).toFixed(1)}% | ${x.relErrMean.toExponential(2)} / ${x.relErrP90.toExponential(2)} | ${x.maxAbsErrP50.toFixed(3)} | ${(100 * x.flippable).toFixed(1)}% | ${(100 * x.agreementAboveBound).toFixed(1)}% of ${x.positionsAboveBound} |`,
    );
  return lines.join('\n');
}
