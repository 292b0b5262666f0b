/**
 * A plain float64 forward pass of a Qwen2/Llama decoder: the oracle every ONNX graph is checked against.
 * No KV cache, no batching, no ONNX: each call recomputes the whole sequence. Only for tiny models.
 *
 * Dimension legend: T tokens, D hidden, H heads, K KV heads, E head_dim, I intermediate, V vocab.
 */
import { ropeInverseFrequencies, type ModelConfig } from '../checkpoint/config.ts';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { EMBED, FINAL_NORM, LM_HEAD, layerTensorNames } from '../checkpoint/names.ts';

interface LayerWeights {
  inputNorm: Float64Array; // [D]
  q: Float64Array; // [H*E, D]
  k: Float64Array; // [K*E, D]
  v: Float64Array; // [K*E, D]
  qBias: Float64Array | null;
  kBias: Float64Array | null;
  vBias: Float64Array | null;
  o: Float64Array; // [D, H*E]
  oBias: Float64Array | null;
  postNorm: Float64Array; // [D]
  gate: Float64Array; // [I, D]
  up: Float64Array; // [I, D]
  down: Float64Array; // [D, I]
  gateBias: Float64Array | null;
  upBias: Float64Array | null;
  downBias: Float64Array | null;
}

/** Output of one reference forward pass. */
export interface ReferenceOutput {
  /** final-normed hidden states [T, D] */
  hidden: Float64Array;
  /** logits [T, V] */
  logits: Float64Array;
}

/** A whole model in float64 memory. */
export class ReferenceModel {
  readonly config: ModelConfig;
  private readonly embed: Float64Array; // [V, D]
  private readonly layers: LayerWeights[];
  private readonly finalNorm: Float64Array; // [D]
  private readonly lmHead: Float64Array; // [V, D]
  private readonly invFreq: Float64Array; // [E/2]

  constructor(ckpt: Checkpoint) {
    const cfg = ckpt.config;
    this.config = cfg;
    const read = (name: string) => Float64Array.from(ckpt.store.readFloat32(name));
    const opt = (name: string, on: boolean) => (on ? read(name) : null);
    this.embed = read(EMBED);
    this.layers = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      const n = layerTensorNames(i);
      this.layers.push({
        inputNorm: read(n.inputNorm),
        q: read(n.q),
        k: read(n.k),
        v: read(n.v),
        qBias: opt(n.qBias, cfg.qkvBias),
        kBias: opt(n.kBias, cfg.qkvBias),
        vBias: opt(n.vBias, cfg.qkvBias),
        o: read(n.o),
        oBias: opt(n.oBias, cfg.oBias),
        postNorm: read(n.postNorm),
        gate: read(n.gate),
        up: read(n.up),
        down: read(n.down),
        gateBias: opt(n.gateBias, cfg.mlpBias),
        upBias: opt(n.upBias, cfg.mlpBias),
        downBias: opt(n.downBias, cfg.mlpBias),
      });
    }
    this.finalNorm = read(FINAL_NORM);
    this.lmHead = cfg.tieWordEmbeddings ? this.embed : read(LM_HEAD);
    this.invFreq = ropeInverseFrequencies(cfg);
  }

  /**
   * Runs `ids` through the model. `skipLayers` = k skips layers 0..k-1 (the InRa reference branch skips the
   * adapters); 0 runs every layer (the aligned branch, or an ordinary model).
   */
  forward(ids: readonly number[], skipLayers = 0): ReferenceOutput {
    return this.run(
      ids,
      Array.from({ length: this.layers.length - skipLayers }, (_, i) => skipLayers + i),
    );
  }

  /**
   * A branch of a multi-adapter model: adapter `name`'s layers then the original layers; null: the original layers
   * only (the reference branch).
   */
  forwardAdapter(ids: readonly number[], name: string | null): ReferenceOutput {
    const cfg = this.config;
    const original = Array.from({ length: cfg.numLayers - cfg.adapterLayers }, (_, i) => cfg.adapterLayers + i);
    if (name === null) return this.run(ids, original);
    const a = cfg.adapters.find((x) => x.name === name);
    if (!a) throw new Error(`no adapter "${name}" (the model has ${cfg.adapters.map((x) => x.name).join(', ') || 'none'})`);
    return this.run(ids, [...Array.from({ length: a.layers }, (_, i) => a.first + i), ...original]);
  }

  /** Logits [T, V] of a mix, literally z_ref + Σ_i λ_i·(z_i − z_ref), each branch run on its own (λ_i = 0: no term). */
  mixLogits(ids: readonly number[], mix: Readonly<Record<string, number>>): Float64Array {
    const ref = this.forwardAdapter(ids, null).logits;
    const out = Float64Array.from(ref);
    for (const [name, lambda] of Object.entries(mix)) {
      if (lambda === 0) continue;
      const z = this.forwardAdapter(ids, name).logits;
      for (let i = 0; i < out.length; i++) out[i] += lambda * (z[i] - ref[i]);
    }
    return out;
  }

  /** Runs `ids` through the listed checkpoint layers in order, then the final norm and lm_head. */
  private run(ids: readonly number[], layers: readonly number[]): ReferenceOutput {
    const { hiddenSize: D, vocabSize: V } = this.config;
    const T = ids.length;
    let x: Float64Array = new Float64Array(T * D); // [T, D]
    ids.forEach((id, t) => x.set(this.embed.subarray(id * D, (id + 1) * D), t * D));
    for (const l of layers) x = this.layer(this.layers[l], x, T);
    const hidden = rmsNorm(x, this.finalNorm, T, D, this.config.rmsNormEps); // [T, D]
    const logits = linear(hidden, this.lmHead, null, T, D, V); // [T, V]
    return { hidden, logits };
  }

  private layer(w: LayerWeights, x: Float64Array, T: number): Float64Array {
    const { hiddenSize: D, numHeads: H, numKvHeads: K, headDim: E, intermediateSize: I, rmsNormEps: eps } = this.config;
    const h = rmsNorm(x, w.inputNorm, T, D, eps); // [T, D]
    const q = linear(h, w.q, w.qBias, T, D, H * E); // [T, H*E]
    const k = linear(h, w.k, w.kBias, T, D, K * E); // [T, K*E]
    const v = linear(h, w.v, w.vBias, T, D, K * E); // [T, K*E]
    this.rotate(q, T, H);
    this.rotate(k, T, K);
    const attn = new Float64Array(T * H * E); // [T, H*E]
    const scale = 1 / Math.sqrt(E);
    const group = H / K;
    const scores = new Float64Array(T);
    for (let hd = 0; hd < H; hd++) {
      const kh = Math.floor(hd / group);
      for (let t = 0; t < T; t++) {
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let e = 0; e < E; e++) dot += q[t * H * E + hd * E + e] * k[s * K * E + kh * E + e];
          scores[s] = dot * scale;
          if (scores[s] > max) max = scores[s];
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += scores[s] = Math.exp(scores[s] - max);
        for (let s = 0; s <= t; s++) {
          const p = scores[s] / sum;
          for (let e = 0; e < E; e++) attn[t * H * E + hd * E + e] += p * v[s * K * E + kh * E + e];
        }
      }
    }
    const o = linear(attn, w.o, w.oBias, T, H * E, D); // [T, D]
    const x1 = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) x1[i] = x[i] + o[i];
    const h2 = rmsNorm(x1, w.postNorm, T, D, eps);
    const gate = linear(h2, w.gate, w.gateBias, T, D, I); // [T, I]
    const up = linear(h2, w.up, w.upBias, T, D, I); // [T, I]
    for (let i = 0; i < T * I; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
    const down = linear(gate, w.down, w.downBias, T, I, D); // [T, D]
    for (let i = 0; i < T * D; i++) x1[i] += down[i];
    return x1;
  }

  /** Rotary embedding in Hugging Face's rotate_half convention, in place on [T, heads*E]. */
  private rotate(x: Float64Array, T: number, heads: number): void {
    const E = this.config.headDim;
    const half = E / 2;
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const angle = t * this.invFreq[i];
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        for (let hd = 0; hd < heads; hd++) {
          const base = t * heads * E + hd * E;
          const a = x[base + i];
          const b = x[base + i + half];
          x[base + i] = a * c - b * s;
          x[base + i + half] = b * c + a * s;
        }
      }
    }
  }
}

/** y = x·Wᵀ + b, with W stored [out, in] as Hugging Face does. */
function linear(x: Float64Array, w: Float64Array, b: Float64Array | null, T: number, nIn: number, nOut: number): Float64Array {
  const y = new Float64Array(T * nOut);
  for (let t = 0; t < T; t++) {
    const xo = t * nIn;
    for (let o = 0; o < nOut; o++) {
      const wo = o * nIn;
      let acc = b ? b[o] : 0;
      for (let i = 0; i < nIn; i++) acc += x[xo + i] * w[wo + i];
      y[t * nOut + o] = acc;
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, T: number, D: number, eps: number): Float64Array {
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[t * D + d] ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    for (let d = 0; d < D; d++) y[t * D + d] = x[t * D + d] * r * w[d];
  }
  return y;
}

/** λ-blend of two logit (or hidden) arrays: λ·aligned + (1 − λ)·reference. */
export function blend(aligned: Float64Array, reference: Float64Array, lambda: number): Float64Array {
  const out = new Float64Array(aligned.length);
  for (let i = 0; i < out.length; i++) out[i] = lambda * aligned[i] + (1 - lambda) * reference[i];
  return out;
}
