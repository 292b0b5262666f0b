/**
 * The heads GroupQueryAttention runs with. Its kernels take a head size that is a multiple of 8, and with its fused
 * rotary (cos/sin caches given) a multiple of 16 (ONNX Runtime's group_query_attention_helper.h: "head_size must be
 * a multiple of 8", "head_size shall be a multiple of 16"). A checkpoint whose head size E is not a multiple of 16
 * (hidden 96 with 8 heads: E = 12) runs with padded heads of Ep = E rounded up to 16 dims, laid out so that GQA's
 * rotary pairs (i, i + Ep/2) are the checkpoint's rotate_half pairs (i, i + E/2):
 *
 *   checkpoint head   [ a0 … a(E/2−1) | b0 … b(E/2−1) ]                      E dims
 *   padded head       [ a0 … a(E/2−1) 0 … 0 | b0 … b(E/2−1) 0 … 0 ]          Ep dims, each half Ep/2
 *
 * The padding lives in the weights, so the graph has the same ops as for any other checkpoint:
 * - q, k, v projections write zeros at the pad dims (zero columns, zero biases);
 * - the rotary tables give the pad dims angle 0 (cos 1, sin 0), so they stay zero;
 * - GroupQueryAttention gets `scale` = 1/√E (its default would be 1/√Ep);
 * - o_proj reads zero rows at the pad dims of the attention output.
 * This is exact: zero dims add nothing to q·k, and v's zero dims give zero output dims that o_proj ignores. The
 * price is a KV cache Ep/E as large; the KV cache stores the padded heads, and its size comes from
 * `attentionHeadSize` through the manifest's `kvGroups[].headDim`, which the engine allocates from.
 */
import type { ModelConfig } from '../checkpoint/config.ts';
import type { layerTensorNames } from '../checkpoint/names.ts';
import type { Attr } from './ir.ts';
import type { Values, WeightSource } from './weights.ts';

/** GroupQueryAttention's head size granule when it applies rotary. */
const GQA_HEAD_MULTIPLE = 16;

/** The head size the graphs and KV caches use for a checkpoint: its own, or padded to what GroupQueryAttention takes. */
export function attentionHeadSize(cfg: Pick<ModelConfig, 'headDim'>): number {
  const E = cfg.headDim;
  if (!Number.isInteger(E) || E <= 0 || E % 2 !== 0)
    throw new Error(`head size ${E} is not a positive even integer (rotary embedding pairs the two halves of each head)`);
  return Math.ceil(E / GQA_HEAD_MULTIPLE) * GQA_HEAD_MULTIPLE;
}

/** Where dim `e` of a checkpoint head of E dims lands in a padded head of Ep dims. */
export function paddedDim(e: number, E: number, Ep: number): number {
  return e < E / 2 ? e : Ep / 2 + (e - E / 2);
}

/** One layer's attention weights as the graph uses them, and the extra GroupQueryAttention attributes. */
export interface AttentionWeights {
  /** MatMul right-hand side [D, (H + 2K)·Ep] */
  qkv: string;
  /** [(H + 2K)·Ep] or null */
  qkvBias: string | null;
  /** MatMul right-hand side [H·Ep, D] */
  o: string;
  /** [D] or null */
  oBias: string | null;
  attributes: Record<string, Attr>;
}

/** The attention weights of one layer; a checkpoint whose heads GroupQueryAttention takes keeps its own layout. */
export function attentionWeights(w: WeightSource, cfg: ModelConfig, n: ReturnType<typeof layerTensorNames>): AttentionWeights {
  const oBias = cfg.oBias ? w.bias([n.oBias]) : null;
  const E = cfg.headDim;
  const Ep = attentionHeadSize(cfg);
  if (Ep === E) {
    return {
      qkv: w.linear([n.q, n.k, n.v]),
      qkvBias: cfg.qkvBias ? w.bias([n.qBias, n.kBias, n.vBias]) : null,
      o: w.linear([n.o]),
      oBias,
      attributes: {},
    };
  }
  const { hiddenSize: D, numHeads: H, numKvHeads: K } = cfg;
  const width = (H + 2 * K) * Ep;
  const parts = [
    { name: n.q, bias: n.qBias, heads: H, before: 0 },
    { name: n.k, bias: n.kBias, heads: K, before: H },
    { name: n.v, bias: n.vBias, heads: K, before: H + K },
  ];
  // the padded column of output dim o of a projection whose heads follow `before` padded heads
  const column = (before: number, o: number) => (before + Math.floor(o / E)) * Ep + paddedDim(o % E, E, Ep);
  const qkv = w.derived(`${n.q}+${n.k}+${n.v}:T:heads${Ep}`, [D, width], (read, out) => {
    for (const p of parts) scatterTransposed(read(p.name), p.heads * E, D, out, width, (o) => column(p.before, o));
  });
  const qkvBias = cfg.qkvBias
    ? w.derived(`${n.qBias}+${n.kBias}+${n.vBias}:heads${Ep}`, [width], (read, out) => {
        for (const p of parts) {
          const b = read(p.bias);
          for (let o = 0; o < p.heads * E; o++) out[column(p.before, o)] = b[o];
        }
      })
    : null;
  // o_proj [D, H·E] → MatMul rhs [H·Ep, D]: input j = h·E + e is row h·Ep + paddedDim(e)
  const o = w.derived(`${n.o}:T:heads${Ep}`, [H * Ep, D], (read, out) => {
    const src = read(n.o);
    for (let j = 0; j < H * E; j++) {
      const row = column(0, j) * D;
      for (let d = 0; d < D; d++) out[row + d] = src[d * H * E + j];
    }
  });
  return { qkv, qkvBias, o, oBias, attributes: { scale: { f: 1 / Math.sqrt(E) } } };
}

/** dst[i·stride + col(o)] = src[o·cols + i] for src [rows, cols] (a linear weight [out, in] as a MatMul rhs). */
function scatterTransposed(
  src: Values,
  rows: number,
  cols: number,
  dst: Values,
  stride: number,
  col: (o: number) => number,
): void {
  for (let o = 0; o < rows; o++) {
    const c = col(o);
    const srow = o * cols;
    for (let i = 0; i < cols; i++) dst[i * stride + c] = src[srow + i];
  }
}
