/**
 * Which tensors a training run changes, their shapes and starting values. Trainable tensors travel as graph inputs
 * and outputs in float32, under their Hugging Face names (LoRA factors under `<module>.lora_A.weight` and
 * `<module>.lora_B.weight`); everything else stays frozen inside the session.
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import type { ModelConfig } from '../checkpoint/config.ts';
import { expectedTensors, layerTensorNames } from '../checkpoint/names.ts';
import { randomNormal } from '../random/normal.ts';

/** What a run trains. */
export type TrainableSpec =
  /**
   * InRa: every tensor of the adapter layers (layers 0..adapterLayers−1); with several named adapters, those of
   * adapter `name` only (the others stay frozen and out of the forward)
   */
  | { kind: 'adapter'; name?: string }
  /** every tensor of the model */
  | { kind: 'full' }
  /** low-rank factors on the linear weights of every layer; the weights themselves stay frozen */
  | { kind: 'lora'; rank: number; alpha: number };

/** One trainable tensor. */
export interface ParamInfo {
  name: string;
  shape: number[];
  /** AdamW weight decay applies (matrices; not norms or biases) */
  decay: boolean;
}

/** A LoRA pair on one linear weight: W' = W + (α/r)·B·A, A [r, in], B [out, r]. */
export interface LoraPair {
  weight: string;
  a: string;
  b: string;
  rank: number;
  scale: number;
}

/** The linear weights of one layer that LoRA wraps. */
const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

/** The names of the LoRA factors of weight `name`. */
export function loraNames(name: string): { a: string; b: string } {
  const base = name.replace(/\.weight$/, '');
  return { a: `${base}.lora_A.weight`, b: `${base}.lora_B.weight` };
}

/** The LoRA pairs of a spec (empty unless kind is lora). */
export function loraPairs(cfg: ModelConfig, spec: TrainableSpec): LoraPair[] {
  if (spec.kind !== 'lora') return [];
  const out: LoraPair[] = [];
  for (let l = 0; l < cfg.numLayers; l++) {
    const n = layerTensorNames(l);
    for (const t of LORA_TARGETS) out.push({ weight: n[t], ...loraNames(n[t]), rank: spec.rank, scale: spec.alpha / spec.rank });
  }
  return out;
}

/**
 * The adapter an adapter spec trains: the one named, or the only one; a model of several adapters needs the name.
 * (Its layers: [first, first + layers).)
 */
export function trainedAdapter(cfg: ModelConfig, name: string | undefined): { first: number; layers: number } {
  const names = cfg.adapters.map((a) => a.name).join(', ');
  if (name === undefined) {
    if (cfg.adapters.length > 1)
      throw new Error(`this checkpoint has ${cfg.adapters.length} adapters (${names}): name the one to train`);
    return { first: 0, layers: cfg.adapterLayers };
  }
  const a = cfg.adapters.find((x) => x.name === name);
  if (!a) throw new Error(`this checkpoint has no adapter named "${name}" (it has: ${names || 'none'})`);
  return a;
}

/**
 * The checkpoint layers a training forward runs: all of them, except that a named adapter of a model of several runs
 * its own layers then the original ones (the other adapters are not on its path).
 */
export function forwardLayers(cfg: ModelConfig, spec: TrainableSpec): number[] | undefined {
  if (spec.kind !== 'adapter' || cfg.adapters.length < 2) return undefined;
  const a = trainedAdapter(cfg, spec.name);
  const original = Array.from({ length: cfg.numLayers - cfg.adapterLayers }, (_, i) => cfg.adapterLayers + i);
  return [...Array.from({ length: a.layers }, (_, i) => a.first + i), ...original];
}

/** The trainable tensors of a spec, in a stable order. */
export function trainableParams(cfg: ModelConfig, spec: TrainableSpec): ParamInfo[] {
  const all = expectedTensors(cfg);
  const info = (t: { name: string; shape: number[] }): ParamInfo => ({
    name: t.name,
    shape: t.shape,
    decay: t.shape.length >= 2,
  });
  if (spec.kind === 'full') return all.map(info);
  if (spec.kind === 'adapter') {
    if (cfg.adapterLayers === 0)
      throw new Error('this checkpoint has no InRa adapter layer: run `realign expand` on the base model first');
    const { first, layers } = trainedAdapter(cfg, spec.name);
    const adapter = (name: string) => {
      const m = /^model\.layers\.(\d+)\./.exec(name);
      return m !== null && Number(m[1]) >= first && Number(m[1]) < first + layers;
    };
    return all.filter((t) => adapter(t.name)).map(info);
  }
  const shapes = new Map(all.map((t) => [t.name, t.shape]));
  return loraPairs(cfg, spec).flatMap((p) => {
    const [out, inp] = shapes.get(p.weight)!;
    return [
      { name: p.a, shape: [p.rank, inp], decay: true },
      { name: p.b, shape: [out, p.rank], decay: true },
    ];
  });
}

/**
 * Starting values: checkpoint tensors for adapter and full training; for LoRA, A ~ N(0, 1/in) (seeded) and B = 0,
 * so that the model starts exactly at the checkpoint.
 */
export function initialParams(ckpt: Checkpoint, spec: TrainableSpec, seed: number): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of trainableParams(ckpt.config, spec)) {
    const count = p.shape.reduce((a, b) => a * b, 1);
    if (spec.kind !== 'lora') out.set(p.name, ckpt.store.readFloat32(p.name, p.shape));
    else if (p.name.endsWith('.lora_A.weight')) out.set(p.name, randomNormal(seed, p.name, count, 0, 1 / Math.sqrt(p.shape[1])));
    else out.set(p.name, new Float32Array(count));
  }
  return out;
}

/** Folds LoRA factors into their weights: W + (α/r)·B·A, for every pair (W as float32 [out, in]). */
export function mergeLora(
  weight: Float32Array,
  a: Float32Array,
  b: Float32Array,
  pair: LoraPair,
  out: number,
  inp: number,
): Float32Array {
  const merged = Float32Array.from(weight);
  const r = pair.rank;
  for (let o = 0; o < out; o++) {
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k] * pair.scale;
      if (bk === 0) continue;
      const row = k * inp;
      const dst = o * inp;
      for (let i = 0; i < inp; i++) merged[dst + i] += bk * a[row + i];
    }
  }
  return merged;
}
