/**
 * Quantized weights in a graph: linear layers through `com.microsoft.MatMulNBits`, the embedding table through
 * `com.microsoft.GatherBlockQuantized` (layouts and rounding in quantize.ts).
 *
 *   x [.., K] ─► MatMulNBits(B uint8 [N, K/bs, bs·bits/8], scales [N, K/bs]) ─► [.., N]
 *   ids [R, S] ─► GatherBlockQuantized(data uint8 [V, D·bits/8], scales [V, D/bs]) ─► [R, S, D]
 *
 * A quantized matrix is handed out by WeightSource.linear / derived as a handle (a name that is not a graph value);
 * DecoderBuilder.project turns a handle into a MatMulNBits node and registers its initializers then. Each
 * initializer's bytes are made when the ONNX writer asks for them: the stored tensors are read, transposed where a
 * layout needs it (padded heads), quantized, and dropped, one matrix at a time, so the model is never in memory as
 * float32 as a whole. The codes and the scales of one matrix come from one quantization (the scales are written
 * right after the codes).
 */
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { float32ToHalfBits, floatToHalf, halfToFloat } from '../checkpoint/dtype.ts';
import { EMBED, LM_HEAD } from '../checkpoint/names.ts';
import { MS_DOMAIN, type Graph } from './ir.ts';
import { quantizeRows, type QuantizedRows, type QuantSpec } from './quantize.ts';
import type { FloatType, Values } from './weights.ts';

/** A matrix to quantize: rows [N, K] made on demand. */
interface Matrix {
  key: string;
  N: number;
  K: number;
  rows: () => Float32Array;
}

const LAYER = /(?:^|\+)model\.layers\.(\d+)\./;

export class QuantizedWeights {
  private readonly matrices = new Map<string, Matrix>();
  private readonly registered = new Map<string, { data: string; scales: string }>();
  private last: { key: string; q: QuantizedRows } | null = null;

  constructor(
    private readonly graph: Graph,
    private readonly ckpt: Checkpoint,
    private readonly floatType: FloatType,
    private readonly prefix: string,
    readonly spec: QuantSpec,
    private readonly read: (name: string) => Float32Array,
  ) {}

  /** Whether the weight made of these stored tensors is quantized (the spec may keep lm_head or the adapter in float). */
  private wants(names: string[]): boolean {
    if (names.some((n) => n === EMBED || n === LM_HEAD)) return !this.spec.floatLmHead;
    if (this.spec.floatAdapter) {
      const adapters = this.ckpt.config.adapterLayers;
      for (const n of names) {
        const m = LAYER.exec(n);
        if (m && Number(m[1]) < adapters) return false;
      }
    }
    return true;
  }

  /** The handle of linear weights [out_k, in] packed along the output axis, or undefined when kept in float. */
  linear(names: string[]): string | undefined {
    if (!this.wants(names)) return undefined;
    const entries = names.map((n) => this.ckpt.store.entry(n));
    const K = entries[0].shape[1];
    const N = entries.reduce((s, e) => s + e.shape[0], 0);
    return this.matrix(`${names.join('+')}:rows`, N, K, () => {
      if (names.length === 1) return this.read(names[0]);
      const out = new Float32Array(N * K);
      let at = 0;
      for (const n of names) {
        const v = this.read(n);
        out.set(v, at);
        at += v.length;
      }
      return out;
    });
  }

  /** The handle of a MatMul right-hand side [K, N] laid out by `make` (WeightSource.derived), or undefined. */
  derived(key: string, dims: number[], make: (read: (name: string) => Values, out: Values) => void): string | undefined {
    if (!this.wants(key.split(':')[0].split('+'))) return undefined;
    const [K, N] = dims;
    return this.matrix(`${key}:rows`, N, K, () => {
      const rhs = new Float32Array(K * N);
      make((name) => this.read(name), rhs);
      const rows = new Float32Array(N * K);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) rows[n * K + k] = rhs[k * N + n];
      return rows;
    });
  }

  /** x·W for a handle, as MatMulNBits in graph `g` (initializers go to the top-level graph); null if not a handle. */
  matMul(g: Graph, x: string, handle: string, name: string): string | null {
    const m = this.matrices.get(handle);
    if (!m) return null;
    const { bits, blockSize } = this.spec;
    const { data, scales } = this.register(m, 'nbits', [m.N, Math.ceil(m.K / blockSize), (blockSize * bits) / 8]);
    const attrs = {
      K: { i: m.K },
      N: { i: m.N },
      bits: { i: bits },
      block_size: { i: blockSize },
      accuracy_level: { i: this.spec.accuracyLevel },
    };
    return g.op1('MatMulNBits', [x, data, scales], attrs, name, MS_DOMAIN);
  }

  /**
   * Embedding lookup through GatherBlockQuantized, or null when the table stays in float: kept by the spec, or a
   * hidden size that is not a multiple of the block size (GatherBlockQuantized's blocks must tile the row).
   */
  embed(g: Graph, ids: string, name: string): string | null {
    if (this.spec.floatEmbedding) return null;
    const [V, D] = this.ckpt.store.entry(EMBED).shape;
    const { bits, blockSize } = this.spec;
    if (D % blockSize !== 0) return null;
    const m: Matrix = { key: `${EMBED}:rows`, N: V, K: D, rows: () => this.read(EMBED) };
    const { data, scales } = this.register(m, 'gather', [V, (D * bits) / 8]);
    const attrs = { gather_axis: { i: 0 }, quantize_axis: { i: 1 }, block_size: { i: blockSize }, bits: { i: bits } };
    return g.op1('GatherBlockQuantized', [data, ids, scales], attrs, name, MS_DOMAIN);
  }

  private matrix(key: string, N: number, K: number, rows: () => Float32Array): string {
    const handle = `${this.prefix}${key}`;
    if (!this.matrices.has(handle)) this.matrices.set(handle, { key, N, K, rows });
    return handle;
  }

  /** Adds (once) the codes and scales initializers of a matrix for one op. */
  private register(m: Matrix, op: 'nbits' | 'gather', dataDims: number[]): { data: string; scales: string } {
    const id = `${m.key}:${op}`;
    const found = this.registered.get(id);
    if (found) return found;
    const { bits, blockSize } = this.spec;
    const base = `${this.prefix}${m.key.replace(/:rows$/, '')}:${op === 'nbits' ? 'MatMulNBits' : 'GatherBlockQuantized'}.q${bits}b${blockSize}`;
    const data = this.graph.initializer(`${base}.data`, 'uint8', dataDims, () => this.quantize(m).data);
    const scales = this.graph.initializer(`${base}.scales`, this.floatType, [m.N, Math.ceil(m.K / blockSize)], () => {
      const s = this.quantize(m).scales;
      const v = this.floatType === 'float32' ? s : float32ToHalfBits(s);
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    });
    const out = { data, scales };
    this.registered.set(id, out);
    return out;
  }

  /** The quantization of a matrix; the last one is kept, so that its scales (written next) need no second pass. */
  private quantize(m: Matrix): QuantizedRows {
    if (this.last?.key === m.key) return this.last.q;
    const round = this.floatType === 'float32' ? Math.fround : (s: number) => halfToFloat(floatToHalf(s));
    const q = quantizeRows(m.rows(), m.N, m.K, this.spec.bits, this.spec.blockSize, round);
    this.last = { key: m.key, q };
    return q;
  }
}
