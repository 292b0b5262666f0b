import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from './errors.ts';

/** Architectures realign builds graphs for. Described as data; differences are flags, not branches. */
export type Architecture = 'qwen2' | 'llama';

/** Rotary position scaling as Hugging Face configures it. */
export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** Everything the graph builder and the reference forward pass need to know about a decoder. */
export interface ModelConfig {
  architecture: Architecture;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  vocabSize: number;
  maxPositions: number;
  /** q/k/v projections carry biases (always for Qwen2, `attention_bias` for Llama). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama `attention_bias`). */
  oBias: boolean;
  /** gate/up/down carry biases (Llama `mlp_bias`). */
  mlpBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Layers 0..adapterLayers-1 are InRa adapters (0 for an ordinary checkpoint). */
  adapterLayers: number;
  /**
   * The named adapters those layers make, bottom first: adapter i is layers [first, first + layers), the adapters
   * tile 0..adapterLayers-1. One adapter (named `DEFAULT_ADAPTER` when the config names none) is today's InRa model.
   */
  adapters: AdapterInfo[];
}

/** One named InRa adapter of a checkpoint: its checkpoint layers [first, first + layers). */
export interface AdapterInfo {
  name: string;
  first: number;
  layers: number;
}

/** The name of the adapter of a checkpoint that names none (realign's single-adapter layout, the original release's). */
export const DEFAULT_ADAPTER = 'aligned';

/** What an adapter may be called: it is a request field's value, a file name part and a graph input name part. */
export const ADAPTER_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** The adapters of `adapterLayers` layers when the config names none: one adapter of all of them. */
export function defaultAdapters(adapterLayers: number): AdapterInfo[] {
  return adapterLayers > 0 ? [{ name: DEFAULT_ADAPTER, first: 0, layers: adapterLayers }] : [];
}

/** The key realign adds to `config.json` to mark InRa adapter layers. */
export const ADAPTER_MARKER = 'realign_inra';

const ARCHITECTURES: Record<string, Architecture> = {
  Qwen2ForCausalLM: 'qwen2',
  LlamaForCausalLM: 'llama',
};

type Json = Record<string, unknown>;

/** Reads and validates `config.json` in a checkpoint folder (both the transformers 4 and 5 layouts). */
export function readModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  let raw: Json;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Json;
  } catch (err) {
    throw new CheckpointError(`${file}: cannot read config (${(err as Error).message})`, file);
  }
  return parseModelConfig(raw, file);
}

/** Turns a parsed Hugging Face `config.json` into a ModelConfig; `file` is used in error messages. */
export function parseModelConfig(raw: Json, file = 'config.json'): ModelConfig {
  const archName = Array.isArray(raw.architectures) ? String(raw.architectures[0]) : undefined;
  const architecture = archName ? ARCHITECTURES[archName] : undefined;
  if (!architecture) {
    throw new CheckpointError(
      `${file}: unknown architecture ${JSON.stringify(archName ?? null)} in "architectures"; supported: ${Object.keys(ARCHITECTURES).join(', ')}`,
      file,
      'architectures',
    );
  }
  const num = (key: string): number => {
    const v = raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new CheckpointError(`${file}: missing or non-numeric key "${key}"`, file, key);
    }
    return v;
  };
  const optNum = (key: string, fallback: number): number => (raw[key] === undefined || raw[key] === null ? fallback : num(key));

  const hiddenSize = num('hidden_size');
  const numHeads = num('num_attention_heads');
  const numKvHeads = optNum('num_key_value_heads', numHeads);
  const headDim = optNum('head_dim', hiddenSize / numHeads);
  if (!Number.isInteger(headDim) || numHeads % numKvHeads !== 0) {
    throw new CheckpointError(
      `${file}: heads (${numHeads}) must be a multiple of KV heads (${numKvHeads}) with an integer head_dim`,
      file,
      'num_key_value_heads',
    );
  }
  const rope = readRope(raw, file);
  const marker = raw[ADAPTER_MARKER] as { adapter_layers?: unknown; adapters?: unknown } | undefined;
  const adapterLayers = marker && typeof marker.adapter_layers === 'number' ? marker.adapter_layers : 0;
  const adapters = readAdapters(marker?.adapters, adapterLayers, file);
  const attentionBias = raw.attention_bias === true;
  return {
    architecture,
    hiddenSize,
    numLayers: num('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: num('intermediate_size'),
    rmsNormEps: optNum('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    vocabSize: num('vocab_size'),
    maxPositions: optNum('max_position_embeddings', 2048),
    qkvBias: architecture === 'qwen2' ? true : attentionBias,
    oBias: architecture === 'qwen2' ? false : attentionBias,
    mlpBias: architecture === 'llama' && raw.mlp_bias === true,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: tokenIdList(raw.eos_token_id) ?? [],
    adapterLayers,
    adapters,
  };
}

/**
 * `realign_inra.adapters`: [{ name, layers }] bottom first, tiling the adapter layers; absent: one adapter of them all.
 */
function readAdapters(v: unknown, adapterLayers: number, file: string): AdapterInfo[] {
  if (v === undefined || v === null) return defaultAdapters(adapterLayers);
  const key = `${ADAPTER_MARKER}.adapters`;
  if (!Array.isArray(v) || v.length === 0)
    throw new CheckpointError(`${file}: "${key}" must be a non-empty list of {name, layers}`, file, key);
  const out: AdapterInfo[] = [];
  let first = 0;
  for (const a of v as { name?: unknown; layers?: unknown }[]) {
    const name = a?.name;
    const layers = a?.layers;
    if (typeof name !== 'string' || !ADAPTER_NAME.test(name))
      throw new CheckpointError(
        `${file}: adapter name ${JSON.stringify(name ?? null)} in "${key}" must match ${ADAPTER_NAME.source}`,
        file,
        key,
      );
    if (out.some((o) => o.name === name))
      throw new CheckpointError(`${file}: adapter "${name}" is named twice in "${key}"`, file, key);
    if (typeof layers !== 'number' || !Number.isInteger(layers) || layers < 1)
      throw new CheckpointError(`${file}: adapter "${name}" in "${key}" needs a positive integer "layers"`, file, key);
    out.push({ name, first, layers });
    first += layers;
  }
  if (first !== adapterLayers)
    throw new CheckpointError(
      `${file}: the adapters in "${key}" hold ${first} layers but "adapter_layers" is ${adapterLayers}`,
      file,
      key,
    );
  return out;
}

/** A token id field of a config file (one id or a list of ids) as a list; null when it holds neither. */
export function tokenIdList(v: unknown): number[] | null {
  if (Array.isArray(v)) return v.filter((e): e is number => typeof e === 'number');
  return typeof v === 'number' ? [v] : null;
}

function readRope(raw: Json, file: string): { theta: number; scaling: RopeScaling } {
  // transformers 5 nests everything under rope_parameters; 4.x keeps rope_theta and rope_scaling at the top level.
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? null) as Json | null;
  const thetaRaw = (params && typeof params.rope_theta === 'number' ? params.rope_theta : raw.rope_theta) ?? 10000;
  if (typeof thetaRaw !== 'number') throw new CheckpointError(`${file}: "rope_theta" must be a number`, file, 'rope_theta');
  const kind = params ? String(params.rope_type ?? params.type ?? 'default') : 'default';
  const need = (key: string): number => {
    const v = params?.[key];
    if (typeof v !== 'number') throw new CheckpointError(`${file}: rope scaling "${kind}" needs numeric "${key}"`, file, key);
    return v;
  };
  switch (kind) {
    case 'default':
      return { theta: thetaRaw, scaling: { type: 'none' } };
    case 'linear':
      return { theta: thetaRaw, scaling: { type: 'linear', factor: need('factor') } };
    case 'llama3':
      return {
        theta: thetaRaw,
        scaling: {
          type: 'llama3',
          factor: need('factor'),
          lowFreqFactor: need('low_freq_factor'),
          highFreqFactor: need('high_freq_factor'),
          originalMaxPositions: need('original_max_position_embeddings'),
        },
      };
    default:
      throw new CheckpointError(
        `${file}: unsupported rope type "${kind}" (supported: default, linear, llama3)`,
        file,
        'rope_type',
      );
  }
}

/** Inverse rotary frequencies [headDim/2], scaled as the config says (float64). */
export function ropeInverseFrequencies(cfg: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const half = cfg.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headDim);
  const s = cfg.ropeScaling;
  if (s.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
  } else if (s.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) {
        inv[i] = inv[i] / s.factor;
      } else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}
