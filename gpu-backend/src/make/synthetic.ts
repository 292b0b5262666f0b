import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Architecture } from '../checkpoint/config.ts';
import { parseModelConfig } from '../checkpoint/config.ts';
import { float32ToBytes, type DType } from '../checkpoint/dtype.ts';
import { expandCheckpoint } from './expand.ts';
import { expectedTensors } from '../checkpoint/names.ts';
import type { ModelPreset } from './presets.ts';
import { randomNormal } from '../random/normal.ts';
import { TensorStore } from '../checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../checkpoint/writer.ts';

/** A Hugging Face `config.json` for a preset shape (transformers 4 layout, which every loader reads). */
export function hfConfig(
  arch: Architecture,
  p: ModelPreset,
  dtype: DType,
  tok: { bos: number | null; eos: number[] },
): Record<string, unknown> {
  const common = {
    architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: arch,
    hidden_act: 'silu',
    hidden_size: p.hiddenSize,
    intermediate_size: p.intermediateSize,
    num_hidden_layers: p.numLayers,
    num_attention_heads: p.numHeads,
    num_key_value_heads: p.numKvHeads,
    head_dim: p.headDim,
    max_position_embeddings: p.maxPositions,
    rms_norm_eps: p.rmsNormEps,
    rope_theta: p.ropeTheta,
    rope_scaling: p.llama3Rope
      ? {
          rope_type: 'llama3',
          factor: p.llama3Rope.factor,
          low_freq_factor: p.llama3Rope.lowFreqFactor,
          high_freq_factor: p.llama3Rope.highFreqFactor,
          original_max_position_embeddings: p.llama3Rope.originalMaxPositions,
        }
      : null,
    tie_word_embeddings: p.tieWordEmbeddings,
    vocab_size: p.vocabSize,
    bos_token_id: tok.bos,
    eos_token_id: tok.eos.length === 1 ? tok.eos[0] : tok.eos,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
    initializer_range: 0.02,
    use_cache: true,
    transformers_version: '4.45.0',
  };
  return arch === 'qwen2'
    ? { ...common, use_sliding_window: false, sliding_window: null, max_window_layers: p.numLayers, attention_dropout: 0 }
    : { ...common, attention_bias: false, mlp_bias: false, attention_dropout: 0, pretraining_tp: 1 };
}

/**
 * An opt-in initialisation of the GPT-2 / Megatron kind, closer to what trained models look like and keeping a deep
 * residual stream stable: every weight matrix (embedding, lm_head, q/k/v, gate/up) N(0, std²), the projections that
 * write into the residual stream (o_proj, down_proj) N(0, (std / √(2·residualLayers))²), biases 0, norm weights 1.
 * `residualLayers` is a number of its own (not the checkpoint's layer count) so that checkpoints with fewer layers
 * are exact prefixes of a deeper one.
 */
export interface ScaledInit {
  std: number;
  residualLayers: number;
}

/** The mean and std a random checkpoint's tensor is drawn with (writeRandomCheckpoint's rule). */
export function randomInitStd(name: string, hiddenSize: number, init?: ScaledInit): { mean: number; std: number } {
  const isNorm = name.endsWith('norm.weight');
  if (!init) return isNorm ? { mean: 1, std: 0.1 } : { mean: 0, std: Math.min(0.08, 1 / Math.sqrt(hiddenSize)) };
  if (isNorm) return { mean: 1, std: 0 };
  if (name.endsWith('.bias')) return { mean: 0, std: 0 };
  const residual = /\.(o_proj|down_proj)\.weight$/.test(name);
  return { mean: 0, std: residual ? init.std / Math.sqrt(2 * init.residualLayers) : init.std };
}

/**
 * Writes config.json and seeded random weights into `dir` (no tokenizer files). By default norm weights are 1 ± 0.1,
 * other weights and biases N(0, σ²) with σ = min(0.08, 1/√hidden), so that tiny models have lively distributions
 * and large ones do not overflow in float16; `init` selects the ScaledInit rule instead.
 */
export function writeRandomCheckpoint(
  dir: string,
  config: Record<string, unknown>,
  seed: number,
  dtype: DType,
  onProgress?: (done: number, total: number) => void,
  init?: ScaledInit,
): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const cfg = parseModelConfig(config, join(dir, 'config.json'));
  const tensors = expectedTensors(cfg).map((t) => ({
    name: t.name,
    dtype,
    shape: t.shape,
    bytes: () => {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const { mean, std } = randomInitStd(t.name, cfg.hiddenSize, init);
      const values = std === 0 ? new Float32Array(count).fill(mean) : randomNormal(seed, t.name, count, mean, std);
      return float32ToBytes(values, dtype);
    },
  }));
  writeWeights(dir, tensors, undefined, onProgress);
}

/**
 * Writes `out` = `src` with every tensor matching `select` perturbed by N(0, std²) (seeded; `std` may depend on the
 * tensor's name): an expanded InRa checkpoint whose adapter then changes the output, as a trained one would.
 */
export function perturbCheckpoint(
  src: string,
  out: string,
  select: (name: string) => boolean,
  seed: number,
  std: number | ((name: string) => number) = 0.05,
): void {
  writeFolderAtomically(out, (dir) => {
    for (const f of readdirSync(src))
      if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) copyFileSync(join(src, f), join(dir, f));
    const store = TensorStore.open(src);
    const tensors = [...store.entries.values()].map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      bytes: () => {
        if (!select(e.name) || e.dtype === 'I64') return store.readBytes(e.name).bytes;
        const v = store.readFloat32(e.name);
        const noise = randomNormal(seed, e.name, v.length, 0, typeof std === 'number' ? std : std(e.name));
        for (let i = 0; i < v.length; i++) v[i] += noise[i];
        return float32ToBytes(v, e.dtype);
      },
    }));
    writeWeights(dir, tensors);
  });
}

/**
 * Writes `out`: `base` expanded with `adapterLayers` InRa layers (identity), then those layers perturbed by
 * N(0, std²) (seeded) — an InRa checkpoint whose adapter changes the output, as a trained one would.
 */
export function syntheticInra(base: string, out: string, seed: number, std: number, adapterLayers = 1): void {
  mkdirSync(dirname(out), { recursive: true });
  const work = mkdtempSync(join(dirname(out), '.expanding-'));
  try {
    const expanded = join(work, 'expanded');
    expandCheckpoint(base, expanded, adapterLayers);
    const inAdapter = (name: string) => {
      const layer = /^model\.layers\.(\d+)\./.exec(name);
      return layer !== null && Number(layer[1]) < adapterLayers;
    };
    perturbCheckpoint(expanded, out, inAdapter, seed, std);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
