import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../gpu-backend/src/checkpoint/checkpoint.ts';
import { expandCheckpoint } from '../../../gpu-backend/src/make/expand.ts';
import { NormalStream } from '../../../gpu-backend/src/random/normal.ts';
import type { HostTensor } from '../../../gpu-backend/src/ort/session.ts';
import { gradCheck } from '../../../gpu-backend/src/train/autodiff/gradcheck.ts';
import { buildTrainGraph, TRAIN_IO } from '../../../gpu-backend/src/train/graphs.ts';
import type { LossKind } from '../../../gpu-backend/src/train/model/losses.ts';
import { DEFAULT_ADAMW } from '../../../gpu-backend/src/train/model/optimizer.ts';
import { initialParams, type TrainableSpec } from '../../../gpu-backend/src/train/params.ts';
import { cleanupTempDirs, tempDir, testSeed, tinyCheckpoint } from '../helpers/models.ts';
import { join } from 'node:path';

// Tolerance: float64 graphs, central differences with ε = 1e-6. Per tensor over the checked elements,
// max |analytic − numeric| ≤ TOL · max |numeric| + noise, where noise is the central differences' own rounding floor
// (gradCheck: 16 · 2^-52 · |L| / ε, ~1e-8 here). The whole network (RMSNorm, rotary, causal GQA attention, SiLU MLP,
// log-softmax, cross-entropy or KL) stays smooth at this scale: the absolute errors are ~1e-9, that floor, so a tensor
// whose checked gradients are all ~1e-3 shows a relative error of ~1e-6 (seed 1613438788, layer 1 q_proj lora_A:
// 1.6e-9 over a largest gradient of 1.06e-3) without anything being wrong; the relative bound alone failed there.
const TOL = 1e-6;
/** elements checked per input (gradCheck's maxElements) */
const CHECKED = 6;

afterAll(cleanupTempDirs);

// heads 4 over 2 KV heads (GQA), head_dim 4, vocabulary 24
const SHAPE = { hiddenSize: 16, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4, intermediateSize: 24, vocabSize: 24 };

const cases: {
  name: string;
  arch: 'qwen2' | 'llama';
  tie: boolean;
  trainable: TrainableSpec;
  loss: LossKind;
  expand: boolean;
}[] = [
  {
    name: 'InRa adapter, SFT loss, qwen2 (biases)',
    arch: 'qwen2',
    tie: false,
    trainable: { kind: 'adapter' },
    loss: 'sft',
    expand: true,
  },
  {
    name: 'every tensor, SFT loss, llama with tied embeddings',
    arch: 'llama',
    tie: true,
    trainable: { kind: 'full' },
    loss: 'sft',
    expand: false,
  },
  {
    name: 'every tensor, forward KL, qwen2',
    arch: 'qwen2',
    tie: false,
    trainable: { kind: 'full' },
    loss: 'kl-forward',
    expand: false,
  },
  {
    name: 'LoRA factors, reverse KL, llama',
    arch: 'llama',
    tie: false,
    trainable: { kind: 'lora', rank: 2, alpha: 4 },
    loss: 'kl-reverse',
    expand: false,
  },
];

describe('whole training graph against central finite differences (float64)', () => {
  const seed = testSeed();
  it.each(cases)(`$name (seed ${seed})`, async ({ arch, tie, trainable, loss, expand }) => {
    const base = tinyCheckpoint({ arch, tie, seed, shape: SHAPE });
    let dir = base;
    if (expand) {
      dir = join(tempDir(), 'expanded');
      expandCheckpoint(base, dir);
    }
    const ckpt = openCheckpoint(dir);
    const { graph, params } = buildTrainGraph(
      { ckpt, trainable, loss, floatType: 'float64', maxPositions: 16, optimizer: DEFAULT_ADAMW, accumulated: false },
      'forward',
    );
    const rng = new NormalStream(seed);
    const B = 2;
    const T = 6;
    const V = SHAPE.vocabSize;
    const ids = BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rng.uniform() * V)));
    // gradCheck looks at 6 evenly spread elements of each input, for the embedding table one in each of the rows
    // ⌊k·V/6⌋: put those tokens in the input, or an untied model's checked rows can all be unused (zero gradient)
    for (let k = 0; k < CHECKED; k++)
      ids[k] = BigInt(Math.floor(Math.floor((k * V * SHAPE.hiddenSize) / CHECKED) / SHAPE.hiddenSize));
    // the second row is padded after 4 tokens; the first position of each row is "prompt"
    const weights = Float64Array.from({ length: B * T }, (_, i) =>
      i % T === 0 || (i >= T && i % T >= 4) ? 0 : 0.1 + rng.uniform(),
    );
    const feeds: Record<string, HostTensor> = {
      [TRAIN_IO.ids]: { type: 'int64', data: ids, dims: [B, T] },
      [TRAIN_IO.weights]: { type: 'float64', data: weights, dims: [B, T] },
    };
    if (loss === 'sft')
      feeds[TRAIN_IO.targets] = {
        type: 'int64',
        data: BigInt64Array.from({ length: B * T }, () => BigInt(Math.floor(rng.uniform() * V))),
        dims: [B, T],
      };
    else feeds[TRAIN_IO.teacher] = { type: 'float64', data: randomLogprobs(rng, B * T, V), dims: [B, T, V] };
    const init = initialParams(ckpt, trainable, seed);
    for (const p of params) {
      const v = Float64Array.from(init.get(p.name)!);
      // LoRA B starts at zero, where A's gradient is zero too: move B off zero so both are checked
      if (p.name.endsWith('lora_B.weight')) for (let i = 0; i < v.length; i++) v[i] = 0.3 * rng.normal();
      // a fresh adapter's zeroed projections would also hide most gradients: perturb them
      if (expand) for (let i = 0; i < v.length; i++) v[i] += 0.05 * rng.normal();
      feeds[p.name] = { type: 'float64', data: v, dims: p.shape };
    }
    const lossName = graph.outputs.find((o) => o.name === TRAIN_IO.loss)!.name;
    const results = await gradCheck(
      graph,
      lossName,
      feeds,
      params.map((p) => p.name),
      { maxElements: CHECKED },
    );
    expect(results.length).toBe(params.length);
    for (const r of results) {
      expect(
        r.analytic.some((x) => x !== 0),
        `${r.name}: all checked gradients are zero`,
      ).toBe(true);
      const largest = r.numeric.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(
        r.absErr,
        `${r.name}: relative error ${r.relErr.toExponential(2)}, noise floor ${r.noise.toExponential(2)}`,
      ).toBeLessThan(TOL * largest + r.noise);
    }
  });
});

function randomLogprobs(rng: NormalStream, rows: number, V: number): Float64Array {
  const out = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, (out[r * V + v] = 2 * rng.normal()));
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(out[r * V + v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) out[r * V + v] -= lse;
  }
  return out;
}
