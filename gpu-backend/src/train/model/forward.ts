/**
 * The training forward of a Qwen2/Llama decoder in plain, differentiable ONNX ops (no fused contrib ops, no KV
 * cache, no control flow). Rows are right-padded: every row's positions are 0..T−1 and causal attention never lets a
 * real token see a pad, so no padding mask is needed; pad positions get zero loss weight.
 *
 * Dimension legend: B rows, T tokens per row, D hidden, H heads, K KV heads, G = H/K, E head_dim, I intermediate,
 * V vocab.
 */
import { ropeInverseFrequencies, type ModelConfig } from '../../checkpoint/config.ts';
import { EMBED, FINAL_NORM, LM_HEAD, layerTensorNames } from '../../checkpoint/names.ts';
import type { Graph } from '../../graph/ir.ts';
import type { TrainWeights } from './weights.ts';

/** What the forward reads and how far it goes. */
export interface ForwardOptions {
  /** int64 [B, T] */
  ids: string;
  /** run layers firstLayer..numLayers−1 (InRa's reference branch skips the adapters; default 0) */
  firstLayer?: number;
  /** the checkpoint layers to run, in order, in place of firstLayer.. (one adapter of several, then the originals) */
  layers?: number[];
  /** rotary table size: the longest row the graph accepts */
  maxPositions: number;
}

/** Emits embeddings → layers → final norm → lm_head and returns the logits [B, T, V]. */
export function emitTrainForward(w: TrainWeights, cfg: ModelConfig, opts: ForwardOptions): string {
  const g = w.g;
  const rope = rotaryTables(g, w, cfg, opts.maxPositions, opts.ids);
  const mask = causalMask(g, w, opts.ids);
  let x = g.op1('Gather', [w.tensor(EMBED), opts.ids], { axis: { i: 0 } }, '/model/embed_tokens/Gather'); // [B, T, D]
  const layers =
    opts.layers ?? Array.from({ length: cfg.numLayers - (opts.firstLayer ?? 0) }, (_, i) => (opts.firstLayer ?? 0) + i);
  for (const l of layers) x = layer(w, cfg, l, x, rope, mask);
  const normed = rmsNorm(w, cfg, x, w.tensor(FINAL_NORM), '/model/norm'); // [B, T, D]
  return w.linear(normed, cfg.tieWordEmbeddings ? EMBED : LM_HEAD, null, '/model/lm_head'); // [B, T, V]
}

/**
 * One decoder layer.
 *
 *   x ─► RMSNorm ─► q,k,v ─► rotary(q,k) ─► repeat KV heads ─► softmax(q·kᵀ/√E + causal) ─► ·v ─► o_proj ─► + x
 *     ─► RMSNorm ─► SiLU(gate)·up ─► down_proj ─► + x
 */
function layer(w: TrainWeights, cfg: ModelConfig, l: number, x: string, rope: Rope, mask: string): string {
  const g = w.g;
  const n = layerTensorNames(l);
  const path = `/model/layers.${l}`;
  const { numHeads: H, numKvHeads: K, headDim: E } = cfg;
  const h = rmsNorm(w, cfg, x, w.tensor(n.inputNorm), `${path}/input_layernorm`); // [B, T, D]
  const heads = (t: string, count: number, what: string) => {
    const split = g.op1('Reshape', [t, g.constant('int64', [0, 0, count, E])], {}, `${path}/attn/${what}/Reshape`); // [B, T, n, E]
    return g.op1('Transpose', [split], { perm: { ints: [0, 2, 1, 3] } }, `${path}/attn/${what}/Transpose`); // [B, n, T, E]
  };
  const bias = (b: string) => (cfg.qkvBias ? b : null);
  let q = heads(w.linear(h, n.q, bias(n.qBias), `${path}/attn/q_proj`), H, 'q'); // [B, H, T, E]
  let k = heads(w.linear(h, n.k, bias(n.kBias), `${path}/attn/k_proj`), K, 'k'); // [B, K, T, E]
  let v = heads(w.linear(h, n.v, bias(n.vBias), `${path}/attn/v_proj`), K, 'v'); // [B, K, T, E]
  q = rotate(g, q, rope, `${path}/attn/q_rotary`);
  k = rotate(g, k, rope, `${path}/attn/k_rotary`);
  if (H !== K) {
    k = repeatKv(g, k, H, K, E, `${path}/attn/k_repeat`); // [B, H, T, E]
    v = repeatKv(g, v, H, K, E, `${path}/attn/v_repeat`);
  }
  const kt = g.op1('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } }, `${path}/attn/k/T`); // [B, H, E, T]
  const raw = g.op1('MatMul', [q, kt], {}, `${path}/attn/scores/MatMul`); // [B, H, T, T]
  const scaled = g.op1('Mul', [raw, g.constant(w.ft, [1 / Math.sqrt(E)], [])], {}, `${path}/attn/scores/scale`);
  const probs = g.op1(
    'Softmax',
    [g.op1('Add', [scaled, mask], {}, `${path}/attn/scores/mask`)],
    { axis: { i: -1 } },
    `${path}/attn/Softmax`,
  );
  const ctx = g.op1('MatMul', [probs, v], {}, `${path}/attn/context/MatMul`); // [B, H, T, E]
  const merged = g.op1(
    'Reshape',
    [
      g.op1('Transpose', [ctx], { perm: { ints: [0, 2, 1, 3] } }, `${path}/attn/context/Transpose`),
      g.constant('int64', [0, 0, H * E]),
    ],
    {},
    `${path}/attn/context/Reshape`,
  ); // [B, T, H*E]
  const o = w.linear(merged, n.o, cfg.oBias ? n.oBias : null, `${path}/attn/o_proj`); // [B, T, D]
  const x1 = g.op1('Add', [x, o], {}, `${path}/attn/residual`);
  const h2 = rmsNorm(w, cfg, x1, w.tensor(n.postNorm), `${path}/post_attention_layernorm`);
  const mb = (b: string) => (cfg.mlpBias ? b : null);
  const gate = w.linear(h2, n.gate, mb(n.gateBias), `${path}/mlp/gate_proj`); // [B, T, I]
  const up = w.linear(h2, n.up, mb(n.upBias), `${path}/mlp/up_proj`); // [B, T, I]
  const silu = g.op1('Mul', [gate, g.op1('Sigmoid', [gate], {}, `${path}/mlp/act/Sigmoid`)], {}, `${path}/mlp/act/Mul`);
  const down = w.linear(g.op1('Mul', [silu, up], {}, `${path}/mlp/Mul`), n.down, mb(n.downBias), `${path}/mlp/down_proj`); // [B, T, D]
  return g.op1('Add', [x1, down], {}, `${path}/mlp/residual`);
}

/** RMSNorm: x / √(mean(x²) + ε) · γ over the last axis. */
export function rmsNorm(w: TrainWeights, cfg: ModelConfig, x: string, gamma: string, path: string): string {
  const g = w.g;
  const sq = g.op1('Mul', [x, x], {}, `${path}/square`);
  const ms = g.op1('ReduceMean', [sq, g.constant('int64', [-1])], { keepdims: { i: 1 } }, `${path}/ReduceMean`); // [B, T, 1]
  const inv = g.op1(
    'Reciprocal',
    [g.op1('Sqrt', [g.op1('Add', [ms, g.constant(w.ft, [cfg.rmsNormEps], [])], {}, `${path}/eps`)], {}, `${path}/Sqrt`)],
    {},
    `${path}/Reciprocal`,
  );
  return g.op1('Mul', [g.op1('Mul', [x, inv], {}, `${path}/normalize`), gamma], {}, `${path}/scale`);
}

interface Rope {
  cos: string; // [T, E]
  sin: string; // [T, E]
  half: number;
}

/** cos/sin tables [maxPositions, E] (each half repeated, as rotate_half expects), cut to the rows' length T. */
function rotaryTables(g: Graph, w: TrainWeights, cfg: ModelConfig, maxPositions: number, ids: string): Rope {
  const inv = ropeInverseFrequencies(cfg);
  const half = inv.length;
  const E = cfg.headDim;
  const table = (f: (x: number) => number, what: string) => {
    const out = w.ft === 'float32' ? new Float32Array(maxPositions * E) : new Float64Array(maxPositions * E);
    for (let p = 0; p < maxPositions; p++) for (let i = 0; i < E; i++) out[p * E + i] = f(p * inv[i % half]);
    return g.initializer(`/rotary/${what}.${maxPositions}`, w.ft, [maxPositions, E], new Uint8Array(out.buffer), false);
  };
  const len = g.op1(
    'Gather',
    [g.op1('Shape', [ids], {}, '/rotary/Shape'), g.constant('int64', [1])],
    { axis: { i: 0 } },
    '/rotary/T',
  ); // [1]
  const cut = (t: string, what: string) =>
    g.op1('Slice', [t, g.constant('int64', [0]), len, g.constant('int64', [0])], {}, `/rotary/${what}/Slice`);
  return { cos: cut(table(Math.cos, 'cos'), 'cos'), sin: cut(table(Math.sin, 'sin'), 'sin'), half };
}

/** x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] (Hugging Face's convention). */
function rotate(g: Graph, x: string, rope: Rope, path: string): string {
  const [x1, x2] = g.op(
    'Split',
    [x, g.constant('int64', [rope.half, rope.half])],
    { axis: { i: -1 } },
    { name: `${path}/Split`, outputs: 2 },
  );
  const rotated = g.op1('Concat', [g.op1('Neg', [x2], {}, `${path}/Neg`), x1], { axis: { i: -1 } }, `${path}/Concat`);
  const a = g.op1('Mul', [x, rope.cos], {}, `${path}/cos`);
  const b = g.op1('Mul', [rotated, rope.sin], {}, `${path}/sin`);
  return g.op1('Add', [a, b], {}, `${path}/Add`);
}

/** [B, K, T, E] → [B, H, T, E]: head h reads KV head ⌊h / G⌋. */
function repeatKv(g: Graph, x: string, H: number, K: number, E: number, path: string): string {
  const u = g.op1('Unsqueeze', [x, g.constant('int64', [2])], {}, `${path}/Unsqueeze`); // [B, K, 1, T, E]
  const e = g.op1('Expand', [u, g.constant('int64', [1, 1, H / K, 1, 1])], {}, `${path}/Expand`); // [B, K, G, T, E]
  return g.op1('Reshape', [e, g.constant('int64', [0, H, -1, E])], {}, `${path}/Reshape`); // [B, H, T, E]
}

/** Additive causal mask [T, T]: 0 where key ≤ query, a large negative number above the diagonal. */
function causalMask(g: Graph, w: TrainWeights, ids: string): string {
  const len = g.op1('Gather', [g.op1('Shape', [ids], {}, '/mask/Shape'), g.scalarI64(1)], { axis: { i: 0 } }, '/mask/T'); // []
  const pos = g.op1('Range', [g.scalarI64(0), len, g.scalarI64(1)], {}, '/mask/Range'); // [T]
  const rows = g.op1('Unsqueeze', [pos, g.constant('int64', [1])], {}, '/mask/rows'); // [T, 1]
  const cols = g.op1('Unsqueeze', [pos, g.constant('int64', [0])], {}, '/mask/cols'); // [1, T]
  const future = g.op1('Greater', [cols, rows], {}, '/mask/future'); // [T, T]
  // finite, so that a softmax row never sees only −∞ (exp underflows to exactly 0 all the same)
  return g.op1('Where', [future, g.constant(w.ft, [-1e9], []), g.constant(w.ft, [0], [])], {}, '/mask/Where');
}
