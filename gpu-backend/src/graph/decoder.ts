/**
 * Decoder blocks emitted with ONNX Runtime's fused ops. Dimension legend:
 *   R branch rows in this step, S new tokens per row, T KV capacity, D hidden, H heads, K KV heads,
 *   E head_dim, I intermediate, V vocab.
 */
import type { ModelConfig } from '../checkpoint/config.ts';
import { ropeInverseFrequencies } from '../checkpoint/config.ts';
import { EMBED, FINAL_NORM, LM_HEAD, layerTensorNames } from '../checkpoint/names.ts';
import { attentionHeadSize, attentionWeights } from './attention-heads.ts';
import { MS_DOMAIN, type Graph } from './ir.ts';
import type { WeightSource } from './weights.ts';

/** The residual stream between blocks: hidden = residual + pending (pending is added by the next norm). */
export interface Residual {
  residual: string; // [R, S, D]
  pending: string | null; // [R, S, D]
}

/** Values every attention block of one model needs. */
export interface AttentionInputs {
  seqlensK: string; // int32 [R]
  totalLength: string; // int32 []
  cos: string; // [maxPos, E/2]
  sin: string; // [maxPos, E/2]
}

/** One layer's KV cache names. */
export interface KvNames {
  pastKey: string; // [R, K, T, E]
  pastValue: string;
  presentKey: string;
  presentValue: string;
}

/** Builds the blocks of one model (one checkpoint, one weight source) into a graph. */
export class DecoderBuilder {
  constructor(
    readonly g: Graph,
    readonly w: WeightSource,
    readonly cfg: ModelConfig,
  ) {}

  /** Token embedding lookup: ids int64 [R, S] → [R, S, D]. */
  embed(ids: string, path: string): string {
    const quantized = this.w.quantized?.embed(this.g, ids, `${path}/embed_tokens/GatherBlockQuantized`);
    if (quantized) return quantized;
    return this.g.op1('Gather', [this.w.raw(EMBED), ids], { axis: { i: 0 } }, `${path}/embed_tokens/Gather`);
  }

  /** Rotary tables cos/sin [maxPos, Ep/2] for GQA, scaled as the config says (padded heads: angle 0 at the pad dims). */
  rotaryTables(maxPositions: number): { cos: string; sin: string } {
    const inv = ropeInverseFrequencies(this.cfg);
    const half = attentionHeadSize(this.cfg) / 2;
    const table = (f: (x: number) => number) => () => {
      const out = new Float32Array(maxPositions * half);
      for (let p = 0; p < maxPositions; p++)
        for (let i = 0; i < half; i++) out[p * half + i] = f(i < inv.length ? p * inv[i] : 0);
      return out;
    };
    return {
      cos: this.w.computed(`rotary.cos.${maxPositions}`, [maxPositions, half], table(Math.cos)),
      sin: this.w.computed(`rotary.sin.${maxPositions}`, [maxPositions, half], table(Math.sin)),
    };
  }

  /**
   * RMSNorm of the stream; when a pending addition exists it is fused into the norm.
   *
   *   pending ─┐
   *   residual ┴─► SkipSimplifiedLayerNormalization ─► normed
   *                                               └──► residual + pending (the new residual)
   */
  norm(stream: Residual, gamma: string, path: string): { normed: string; residual: string } {
    const eps = { f: this.cfg.rmsNormEps };
    if (!stream.pending) {
      const normed = this.g.op1(
        'SimplifiedLayerNormalization',
        [stream.residual, gamma],
        { epsilon: eps, axis: { i: -1 }, stash_type: { i: 1 } },
        `${path}/SimplifiedLayerNorm`,
      );
      return { normed, residual: stream.residual };
    }
    const [normed, , , sum] = this.g.op(
      'SkipSimplifiedLayerNormalization',
      [stream.pending, stream.residual, gamma],
      { epsilon: eps },
      {
        name: `${path}/SkipSimplifiedLayerNorm`,
        domain: MS_DOMAIN,
        outputs: [`${path}/SkipSimplifiedLayerNorm/output_0`, '', '', `${path}/SkipSimplifiedLayerNorm/output_3`],
      },
    );
    return { normed, residual: sum };
  }

  /** x·W (+ b) with W given as HF names packed along the output axis. */
  linear(x: string, names: string[], biases: string[] | null, path: string): string {
    return this.project(x, this.w.linear(names), biases ? this.w.bias(biases) : null, path);
  }

  /** x·W (+ b) with W and b given as initializers (W a quantized matrix's handle: MatMulNBits, see matmul-nbits.ts). */
  project(x: string, weight: string, bias: string | null, path: string): string {
    const y =
      this.w.quantized?.matMul(this.g, x, weight, `${path}/MatMulNBits`) ??
      this.g.op1('MatMul', [x, weight], {}, `${path}/MatMul`);
    return bias ? this.g.op1('Add', [y, bias], {}, `${path}/BiasAdd`) : y;
  }

  /**
   * One decoder layer (checkpoint layer `index`) at graph path `path`.
   *
   *   stream ─► norm ─► qkv_proj ─► GroupQueryAttention(rotary, KV cache) ─► o_proj ─► (pending)
   *          ─► norm ─► gate_up_proj ─► SiLU(gate)·up ─► down_proj ─► (pending)
   * A head size GQA refuses is padded in the qkv_proj and o_proj weights (attention-heads.ts).
   */
  layer(index: number, path: string, stream: Residual, attn: AttentionInputs, kv: KvNames): Residual {
    const n = layerTensorNames(index);
    const { numHeads: H, numKvHeads: K } = this.cfg;
    const a = this.norm(stream, this.w.raw(n.inputNorm), `${path}/input_layernorm`);
    const heads = attentionWeights(this.w, this.cfg, n);
    const qkv = this.project(a.normed, heads.qkv, heads.qkvBias, `${path}/attn/qkv_proj`); // [R, S, (H+2K)E]
    const [ctx] = this.g.op(
      'GroupQueryAttention',
      [qkv, '', '', kv.pastKey, kv.pastValue, attn.seqlensK, attn.totalLength, attn.cos, attn.sin],
      { num_heads: { i: H }, kv_num_heads: { i: K }, do_rotary: { i: 1 }, rotary_interleaved: { i: 0 }, ...heads.attributes },
      {
        name: `${path}/attn/GroupQueryAttention`,
        domain: MS_DOMAIN,
        outputs: [`${path}/attn/GroupQueryAttention/output_0`, kv.presentKey, kv.presentValue],
      },
    ); // [R, S, H*E]
    const o = this.project(ctx, heads.o, heads.oBias, `${path}/attn/o_proj`); // [R, S, D]
    const m = this.norm({ residual: a.residual, pending: o }, this.w.raw(n.postNorm), `${path}/post_attention_layernorm`);
    const gateUp = this.linear(
      m.normed,
      [n.gate, n.up],
      this.cfg.mlpBias ? [n.gateBias, n.upBias] : null,
      `${path}/mlp/gate_up_proj`,
    ); // [R, S, 2I]
    const I = this.cfg.intermediateSize;
    const [gate, up] = this.g.op(
      'Split',
      [gateUp, this.g.constant('int64', [I, I])],
      { axis: { i: -1 } },
      { name: `${path}/mlp/Split`, outputs: 2 },
    );
    const sig = this.g.op1('Sigmoid', [gate], {}, `${path}/mlp/act/Sigmoid`);
    const silu = this.g.op1('Mul', [gate, sig], {}, `${path}/mlp/act/Mul`);
    const prod = this.g.op1('Mul', [silu, up], {}, `${path}/mlp/Mul`); // [R, S, I]
    const down = this.linear(prod, [n.down], this.cfg.mlpBias ? [n.downBias] : null, `${path}/mlp/down_proj`); // [R, S, D]
    return { residual: m.residual, pending: down };
  }

  /** Adds the pending term so the stream is one tensor again (at a branch boundary). */
  materialize(stream: Residual, path: string): string {
    return stream.pending ? this.g.op1('Add', [stream.residual, stream.pending], {}, `${path}/residual/Add`) : stream.residual;
  }

  /** Final RMSNorm: [R, S, D] normed hidden states. */
  finalNorm(stream: Residual, path: string): string {
    return this.norm(stream, this.w.raw(FINAL_NORM), `${path}/norm`).normed;
  }

  /** Vocabulary projection [.., D] → [.., V]; a tied model stores a transposed copy of its embedding for it. */
  lmHead(x: string, path: string): string {
    const weight = this.cfg.tieWordEmbeddings ? EMBED : LM_HEAD;
    return this.project(x, this.w.linear([weight]), null, `${path}/lm_head`);
  }
}
