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
 * `--init scaled` draws the random model with synthetic.ts' ScaledInit (GPT-2 / Megatron style: std 0.02, o_proj and
 * down_proj 0.02/√(2·24), biases 0, norms 1; the default synthetic weights are untouched) instead of the default
 * (every weight N(0, 1/hidden), norms 1 ± 0.1). `--layers N` keeps only the first N decoder layers (the same tensors:
 * the seeds are per tensor name, and ScaledInit's residual scale stays that of 24 layers), for error growth with
 * depth. `--variants` picks rows (int8, int8-float-ends, int8-al0, int8-b16-al0 (block 16, the smallest MatMulNBits
 * takes), int4, int4-float-ends, int4-al0, noise).
 *
 * `--noise-scales 1,0.5,0.25` adds one noise row per scale s: the float32 graph with N(0, (s · int8 RMS error · σ_w)²)
 * on the same weights (the same seed, so each row's noise is s times one fixed draw): the weight error at which the
 * random model's top-1 agreement reaches a given level. The result also gives the RMS error of symmetric
 * round-to-nearest at block 32 for 8–14 bits (simulated in float64 on layer 0's q_proj, no graph), to read a noise
 * scale as a number of bits.
 *
 * `--toy` measures the trained toy model instead (models/toy-inra, InRa graph at `--lambda`, default 1): its prompts
 * are `npm run toy`'s held-out problems as the chat prompt followed by the task's full answer text (the kind of
 * sequence it was trained on), one prefill each, until `--positions` positions are covered.
 *
 *   node --import tsx bench/quantized-agreement.ts [--positions 512] [--init default|scaled] [--layers 24]
 *     [--variants int8,noise] [--noise-scales 1,0.5] [--toy [--lambda 1]]
 *     [--out bench/results/quantized-agreement.json]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openCheckpoint, type Checkpoint } from '../gpu-backend/src/checkpoint/checkpoint.ts';
import { initModel } from '../gpu-backend/src/make/init-model.ts';
import { perturbCheckpoint, type ScaledInit } from '../gpu-backend/src/make/synthetic.ts';
import { PRESETS } from '../gpu-backend/src/make/presets.ts';
import { GraphRunner } from '../gpu-backend/src/engine/graph-runner.ts';
import { RowAllocator, branchesFor } from '../gpu-backend/src/engine/rows.ts';
import { ensureGraph } from '../gpu-backend/src/graph/build.ts';
import { roundTrip, type QuantSpec } from '../gpu-backend/src/graph/quantize.ts';
import { ModelSession } from '../gpu-backend/src/ort/session.ts';
import { BENCH_ROOT } from './lib/models.ts';
import { percentile } from './lib/stats.ts';
import { TextTokenizer } from '../gpu-backend/src/text/tokenizer.ts';
import { answerOf, problems, promptOf } from './toy/task.ts';

const PRESET = 'qwen2.5-0.5b';

export interface AgreementRow {
  name: string;
  agreement: number;
  relErrMean: number;
  relErrP90: number;
  /** per position ‖Δz‖₂ / ‖z‖₂ (z: float32's logits), mean over positions */
  relL2ErrMean?: number;
  /** share of positions whose float32 margin is below 2·max |Δz| there (could flip) */
  flippable: number;
  /** agreement on positions with margin > 2 · p90(max |Δz|) (labelled: a subset), and how many */
  agreementAboveBound: number;
  positionsAboveBound: number;
  maxAbsErrP50: number;
  /** RMS of the weight error / RMS of the weights: the format's measured rounding error (layer 0 q_proj) or the noise's */
  weightRelRms?: number;
}

export interface AgreementResult {
  date: string;
  preset: string;
  /** 'default' (synthetic.ts' default draws) or 'scaled' (ScaledInit) */
  init?: string;
  /** decoder layers kept (the preset's 24 unless --layers) */
  layers?: number;
  /** the checkpoint measured when not a random preset model (--toy), and its λ */
  model?: string;
  lambda?: number;
  positions: number;
  /** float32 margins (top-1 − top-2 logit): percentiles, and the per-position logit std for scale */
  margin: { p10: number; p50: number; p90: number };
  logitStdMean: number;
  /** measured RMS of int8 rounding error / RMS of the weights (layer 0 q_proj), the noise variant's size */
  int8ErrorRms: number;
  int4ErrorRms: number;
  /** symmetric round-to-nearest at block 32, RMS error / RMS of the weights by bits (float64 simulation, layer 0 q_proj) */
  rtnErrorRmsByBits?: { bits: number; relRms: number }[];
  rows: AgreementRow[];
}

/** ScaledInit for this preset: std 0.02, residual projections scaled for the full depth. */
export const SCALED_INIT: ScaledInit = { std: 0.02, residualLayers: PRESETS[PRESET].numLayers };

function baseModel(init: string, layers: number): { dir: string; init?: ScaledInit } {
  const full = layers === PRESETS[PRESET].numLayers;
  if (init === 'default' && full) {
    const dir = join(BENCH_ROOT, 'models', PRESET);
    if (!existsSync(dir)) initModel(dir, { arch: 'qwen2', preset: PRESET, seed: 1, dtype: 'F32' });
    return { dir };
  }
  const scaled = init === 'scaled' ? SCALED_INIT : undefined;
  if (init !== 'default' && !scaled) throw new Error(`--init ${init}: expected default or scaled`);
  const dir = join(BENCH_ROOT, 'models', `${PRESET}-${init}-L${layers}`);
  if (!existsSync(dir))
    initModel(dir, { arch: 'qwen2', preset: PRESET, seed: 1, dtype: 'F32', overrides: { numLayers: layers }, init: scaled });
  return { dir, init: scaled };
}

/** The logits at every position of every prompt (one prefill each), concatenated. */
async function allLogits(
  ckpt: Checkpoint,
  prompts: number[][],
  graphs: string,
  quant?: QuantSpec,
  lambda = 1,
): Promise<Float32Array> {
  const mode = ckpt.config.adapterLayers > 0 ? 'inra' : 'single';
  const maxContext = Math.min(1024, ckpt.config.maxPositions);
  const files = ensureGraph({ mode, floatType: 'float32', maxContext, model: ckpt, quant }, graphs);
  const session = await ModelSession.open(files.modelPath, { device: 'cpu' });
  const runner = new GraphRunner(session, files.manifest);
  const V = ckpt.config.vocabSize;
  const out = new Float32Array(prompts.reduce((s, p) => s + p.length, 0) * V);
  try {
    const rows = new RowAllocator(runner);
    let at = 0;
    for (const prompt of prompts) {
      const h = rows.add(branchesFor(mode, [lambda]));
      const plan = rows.prefillPlan([{ handle: h, tokens: prompt, lambdas: [lambda] }], true);
      out.set((await runner.step(plan)).logits.subarray(0, prompt.length * V), at);
      at += prompt.length * V;
      rows.remove(h);
    }
    return out;
  } finally {
    await runner.release();
  }
}

/** `npm run toy`'s held-out problems (bench/toy/run.ts: problems(SEED + 1, 200)) as prompt + full answer token ids. */
function toyPrompts(dir: string, positions: number): number[][] {
  const tok = TextTokenizer.load(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  const out: number[][] = [];
  let n = 0;
  for (const p of problems(20250615 + 1, 200)) {
    if (n >= positions) break;
    const ids = [
      ...tok.encodeChat([{ role: 'user', content: promptOf(p) }]),
      ...tok.encode(answerOf(p, 2), { addSpecialTokens: false }),
    ];
    out.push(ids);
    n += ids.length;
  }
  return out;
}

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / a.length);
}

const PROBE = 'model.layers.0.self_attn.q_proj.weight';

/** RMS of (ŵ − w) / RMS of w for one matrix, through the graphs' quantizer. */
function roundingError(ckpt: Checkpoint, bits: 4 | 8, blockSize = 32): number {
  const [N, K] = ckpt.store.entry(PROBE).shape;
  const w = ckpt.store.readFloat32(PROBE);
  const q = roundTrip(w, N, K, bits, blockSize);
  const d = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) d[i] = q[i] - w[i];
  return rms(d) / rms(w);
}

/**
 * The same for a symmetric round-to-nearest format of any width (scale = max |w| over the block / (2^(bits−1) − 1)),
 * computed in float64 without packing: what a wider format than the graphs support would round the matrix to.
 */
export function rtnErrorRms(w: ArrayLike<number>, K: number, bits: number, blockSize: number): number {
  const qmax = 2 ** (bits - 1) - 1;
  let e2 = 0;
  let w2 = 0;
  for (let k0 = 0; k0 < w.length; k0 += K)
    for (let b = k0; b < k0 + K; b += blockSize) {
      const end = Math.min(k0 + K, b + blockSize);
      let amax = 0;
      for (let i = b; i < end; i++) amax = Math.max(amax, Math.abs(w[i]));
      const scale = amax / qmax;
      for (let i = b; i < end; i++) {
        const d = scale > 0 ? Math.round(w[i] / scale) * scale - w[i] : w[i];
        e2 += d * d;
        w2 += w[i] * w[i];
      }
    }
  return Math.sqrt(e2 / w2);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      positions: { type: 'string', default: '512' },
      init: { type: 'string', default: 'default' },
      layers: { type: 'string', default: String(PRESETS[PRESET].numLayers) },
      variants: { type: 'string', default: 'int8,int8-float-ends,int8-al0,int4,int4-float-ends,int4-al0,noise' },
      'noise-scales': { type: 'string' },
      toy: { type: 'boolean', default: false },
      lambda: { type: 'string', default: '1' },
      out: { type: 'string', default: resolve(import.meta.dirname, 'results/quantized-agreement.json') },
    },
  });
  const log = (s: string) => process.stderr.write(`[quantized-agreement ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  const lambda = Number(values.lambda);
  const { dir } = values.toy
    ? { dir: resolve(import.meta.dirname, '../models/toy-inra') }
    : baseModel(values.init!, Number(values.layers));
  const wanted = new Set(values.variants!.split(','));
  log(`model ${dir}`);
  const ckpt = openCheckpoint(dir);
  const V = ckpt.config.vocabSize;
  const graphs = join(BENCH_ROOT, 'graphs');
  let seed = 5;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const prompts = values.toy
    ? toyPrompts(dir, Number(values.positions))
    : [Array.from({ length: Number(values.positions) }, () => Math.floor(rand() * V))];
  const P = prompts.reduce((s, p) => s + p.length, 0);

  log('float32');
  const ref = await allLogits(ckpt, prompts, graphs, undefined, lambda);
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
    init: values.toy ? undefined : values.init,
    layers: ckpt.config.numLayers,
    ...(values.toy ? { model: 'models/toy-inra', lambda } : {}),
    positions: P,
    margin: { p10: percentile(margins, 10), p50: percentile(margins, 50), p90: percentile(margins, 90) },
    logitStdMean: stdSum / P,
    int8ErrorRms: roundingError(ckpt, 8),
    int4ErrorRms: roundingError(ckpt, 4),
    rows: [],
  };
  const noiseScales = values['noise-scales'] ? values['noise-scales'].split(',').map(Number) : wanted.has('noise') ? [1] : [];
  if (noiseScales.some((x) => !(x > 0))) throw new Error(`--noise-scales ${values['noise-scales']}: expected positive numbers`);
  if (values['noise-scales']) {
    const w = ckpt.store.readFloat32(PROBE);
    const K = ckpt.store.entry(PROBE).shape[1];
    result.rtnErrorRmsByBits = [8, 9, 10, 11, 12, 13, 14].map((bits) => ({ bits, relRms: rtnErrorRms(w, K, bits, 32) }));
  }

  const compare = (name: string, z: Float32Array, weightRelRms?: number) => {
    let agree = 0;
    const rel: number[] = [];
    const l2: number[] = [];
    const maxAbs: number[] = [];
    let flippable = 0;
    const same: boolean[] = [];
    for (let p = 0; p < P; p++) {
      let ia = 0;
      let ib = 0;
      let num = 0;
      let den = 0;
      let d2 = 0;
      let z2 = 0;
      for (let i = 0; i < V; i++) {
        const x = z[p * V + i];
        const y = ref[p * V + i];
        if (x > z[p * V + ia]) ia = i;
        if (y > ref[p * V + ib]) ib = i;
        num = Math.max(num, Math.abs(x - y));
        d2 += (x - y) * (x - y);
        z2 += y * y;
        den = Math.max(den, Math.abs(y));
      }
      same.push(ia === ib);
      if (ia === ib) agree++;
      rel.push(num / den);
      l2.push(Math.sqrt(d2 / z2));
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
      relL2ErrMean: l2.reduce((s, x) => s + x, 0) / P,
      flippable: flippable / P,
      agreementAboveBound: above.length > 0 ? above.filter((p) => same[p]).length / above.length : NaN,
      positionsAboveBound: above.length,
      maxAbsErrP50: percentile(maxAbs, 50),
      weightRelRms,
    };
    result.rows.push(row);
    log(`${name}: ${JSON.stringify(row)}`);
    writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n'); // each row as it comes: a long sweep stopped early keeps its rows
  };

  const variants: { key: string; name: string; quant: QuantSpec }[] = [];
  for (const bits of [8, 4] as const) {
    variants.push({ key: `int${bits}`, name: `int${bits}`, quant: { bits, blockSize: 32, accuracyLevel: 4 } });
    variants.push({
      key: `int${bits}-float-ends`,
      name: `int${bits}, embedding + lm_head float32`,
      quant: { bits, blockSize: 32, accuracyLevel: 4, floatEmbedding: true, floatLmHead: true },
    });
    variants.push({
      key: `int${bits}-al0`,
      name: `int${bits}, accuracy_level 0`,
      quant: { bits, blockSize: 32, accuracyLevel: 0 },
    });
  }
  variants.push({
    key: 'int8-b16-al0',
    name: 'int8, block 16, accuracy_level 0',
    quant: { bits: 8, blockSize: 16, accuracyLevel: 0 },
  });
  for (const v of variants.filter((x) => wanted.has(x.key))) {
    log(v.name);
    const z = await allLogits(ckpt, prompts, graphs, v.quant, lambda);
    compare(v.name, z, roundingError(ckpt, v.quant.bits, v.quant.blockSize));
  }

  // the model's own sensitivity: float32 with N(0, (s · int8 RMS error · σ_w)²) on every weight matrix int8 would round
  // (σ_w: that tensor's own RMS; norms and biases are not quantized and get none); seed 3 for every s
  const sigma = new Map<string, number>();
  const sigmaOf = (n: string) => sigma.get(n) ?? sigma.set(n, rms(ckpt.store.readFloat32(n))).get(n)!;
  for (const s of noiseScales) {
    const tmp = mkdtempSync(join(tmpdir(), 'realign-qagree-'));
    try {
      const quantized = (n: string) => n.endsWith('.weight') && !n.includes('norm');
      log(`float32 + ${s} × int8-sized weight noise: writing the perturbed checkpoint`);
      perturbCheckpoint(dir, join(tmp, 'noisy'), quantized, 3, (n) => s * result.int8ErrorRms * sigmaOf(n));
      compare(
        s === 1 ? 'float32 + int8-sized Gaussian weight noise' : `float32 + ${s} × int8-sized Gaussian weight noise`,
        await allLogits(openCheckpoint(join(tmp, 'noisy')), prompts, join(tmp, 'g'), undefined, lambda),
        s * result.int8ErrorRms,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(agreementTable(result) + '\n');
}

/** The result as markdown. */
export function agreementTable(r: AgreementResult): string {
  const w = r.rows.some((x) => x.weightRelRms !== undefined);
  const lines = [
    (r.model
      ? `Trained toy model ${r.model} (InRa graph at λ ${r.lambda}), ${r.positions} positions of npm run toy's held-out problems (prompt + full answer text).`
      : `Random ${r.preset}-shape model (seed 1, ${r.init === 'scaled' ? `GPT-2-style init: std ${SCALED_INIT.std}, o_proj/down_proj ${SCALED_INIT.std}/√(2·${SCALED_INIT.residualLayers}), biases 0, norms 1` : 'default synthetic init: every weight N(0, 1/hidden), norms 1 ± 0.1'}, ${r.layers ?? 24} layers), ${r.positions} positions of one random prompt.`) +
      ` float32's top-1 margin (top-1 − top-2 logit): p10 ${r.margin.p10.toFixed(3)}, median ${r.margin.p50.toFixed(3)}, p90 ${r.margin.p90.toFixed(3)}, against a per-position logit std of ${r.logitStdMean.toFixed(2)}. Measured rounding error RMS / weight RMS: int8 ${r.int8ErrorRms.toExponential(2)}, int4 ${r.int4ErrorRms.toExponential(2)} (block 32).`,
    '',
    `| variant |${w ? ' weight error RMS / weight RMS |' : ''} top-1 = float32 | rel. logit error max abs Δz / max abs z (mean / p90) | ‖Δz‖/‖z‖ (mean) | median max abs Δz | positions that could flip (margin < 2·max abs Δz) | top-1 = float32 where margin > 2·p90(max abs Δz) (subset, labelled) |`,
    `|---|---|---|---|---|---|---|${w ? '---|' : ''}`,
  ];
  for (const x of r.rows)
    lines.push(
      `| ${x.name} |${w ? ` ${x.weightRelRms?.toExponential(2) ?? '–'} |` : ''} ${(100 * x.agreement).toFixed(1)}% | ${x.relErrMean.toExponential(2)} / ${x.relErrP90.toExponential(2)} | ${x.relL2ErrMean?.toExponential(2) ?? '–'} | ${x.maxAbsErrP50.toFixed(3)} | ${(100 * x.flippable).toFixed(1)}% | ${(100 * x.agreementAboveBound).toFixed(1)}% of ${x.positionsAboveBound} |`,
    );
  if (r.rtnErrorRmsByBits)
    lines.push(
      '',
      `Symmetric round-to-nearest at block 32, RMS error / weight RMS on layer 0's q_proj (float64, no graph): ${r.rtnErrorRmsByBits.map((x) => `${x.bits} bits ${x.relRms.toExponential(2)}`).join(', ')}.`,
    );
  return lines.join('\n');
}
