import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { bytesToFloat32, float32ToHalfBits } from '../checkpoint/dtype.ts';
import type { Graph } from './ir.ts';
import { QuantizedWeights } from './matmul-nbits.ts';
import type { QuantSpec } from './quantize.ts';

/** Float type of a graph's weights and activations: float32 on CPU, float16 on CUDA. */
export type FloatType = 'float32' | 'float16';

/** A tensor's values in the graph's float type (float16 as its bits). */
export type Values = Float32Array | Uint16Array;

/**
 * Adds a checkpoint's weights to a graph as external initializers, transformed on the fly (transposed for MatMul,
 * packed, converted to float16). Each weight is read from disk only when the writer asks for its bytes, so the
 * model is never in memory as a whole. The same weight requested twice is added once.
 */
export class WeightSource {
  private readonly added = new Map<string, string>();
  /** with a QuantSpec: the quantized matrices (MatMulNBits) and embedding table (GatherBlockQuantized) */
  readonly quantized: QuantizedWeights | null;

  constructor(
    private readonly graph: Graph,
    private readonly ckpt: Checkpoint,
    readonly floatType: FloatType,
    /** prefix for initializer names, so that two checkpoints can live in one graph */
    private readonly prefix: string,
    quant?: QuantSpec,
  ) {
    this.quantized = quant ? new QuantizedWeights(graph, ckpt, floatType, prefix, quant, (name) => this.readFloat32(name)) : null;
  }

  /** A tensor as stored ([out, in] for linear layers). */
  raw(name: string): string {
    const shape = this.ckpt.store.entry(name).shape;
    return this.add(name, shape, () => this.read(name));
  }

  /**
   * Linear weights [out_k, in] of one or more HF tensors, transposed and concatenated along the output axis:
   * a MatMul right-hand side [in, Σ out_k].
   */
  linear(names: string[]): string {
    const matrix = this.quantized?.linear(names);
    if (matrix) return matrix;
    const entries = names.map((n) => this.ckpt.store.entry(n));
    const nIn = entries[0].shape[1];
    const total = entries.reduce((s, e) => s + e.shape[0], 0);
    return this.add(`${names.join('+')}:T`, [nIn, total], () => {
      const packed = this.alloc(nIn * total); // [in, Σout]
      let col = 0;
      for (const [k, n] of names.entries()) {
        const nOut = entries[k].shape[0];
        transposeInto(this.read(n), nOut, nIn, packed, total, col);
        col += nOut;
      }
      return packed;
    });
  }

  /** Biases of one or more HF tensors concatenated: [Σ out_k]. */
  bias(names: string[]): string {
    const lens = names.map((n) => this.ckpt.store.entry(n).shape[0]);
    const total = lens.reduce((a, b) => a + b, 0);
    return this.add(names.join('+'), [total], () => {
      const out = this.alloc(total);
      let at = 0;
      names.forEach((n, k) => {
        out.set(this.read(n), at);
        at += lens[k];
      });
      return out;
    });
  }

  /** A tensor computed here (rotary tables) added as a weight. */
  computed(key: string, dims: number[], make: () => Float32Array): string {
    return this.add(key, dims, () => (this.floatType === 'float32' ? make() : float32ToHalfBits(make())));
  }

  /**
   * A weight laid out from stored tensors by `make` (padded attention heads, see attention-heads.ts): it gets a
   * reader of stored tensors in the graph's float type and the zeroed output of `dims` to fill, when the writer asks.
   */
  derived(key: string, dims: number[], make: (read: (name: string) => Values, out: Values) => void): string {
    const matrix = dims.length === 2 ? this.quantized?.derived(key, dims, make) : undefined; // 2-D: a MatMul right-hand side
    if (matrix) return matrix;
    return this.add(key, dims, () => {
      const out = this.alloc(dims.reduce((a, b) => a * b, 1));
      make((name) => this.read(name), out);
      return out;
    });
  }

  /** A stored tensor in the graph's float type; float16 checkpoints pass to float16 graphs without conversion. */
  private read(name: string): Values {
    const { entry, bytes } = this.ckpt.store.readBytes(name);
    if (entry.dtype === 'I64') throw new Error(`${entry.file}: tensor "${name}" is I64, expected a float weight`);
    if (this.floatType === 'float16' && entry.dtype === 'F16') {
      const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
      return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
    }
    const f32 = bytesToFloat32(bytes, entry.dtype);
    return this.floatType === 'float32' ? f32 : float32ToHalfBits(f32);
  }

  /** A stored tensor as float32 (what quantization reads, whatever the graph's float type). */
  private readFloat32(name: string): Float32Array {
    const { entry, bytes } = this.ckpt.store.readBytes(name);
    if (entry.dtype === 'I64') throw new Error(`${entry.file}: tensor "${name}" is I64, expected a float weight`);
    return bytesToFloat32(bytes, entry.dtype);
  }

  private alloc(n: number): Values {
    return this.floatType === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  }

  private add(key: string, dims: number[], make: () => Values): string {
    const found = this.added.get(key);
    if (found) return found;
    const name = `${this.prefix}${key}`;
    this.graph.initializer(name, this.floatType, dims, () => {
      const v = make();
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    });
    this.added.set(key, name);
    return name;
  }
}

/** dst[i, col + o] = src[o, i] for src [rows, cols] into dst with row stride `stride`, in cache-sized tiles. */
function transposeInto(src: Values, rows: number, cols: number, dst: Values, stride: number, col: number): void {
  const B = 64;
  for (let o0 = 0; o0 < rows; o0 += B) {
    const o1 = Math.min(rows, o0 + B);
    for (let i0 = 0; i0 < cols; i0 += B) {
      const i1 = Math.min(cols, i0 + B);
      for (let o = o0; o < o1; o++) {
        const srow = o * cols;
        const dcol = col + o;
        for (let i = i0; i < i1; i++) dst[i * stride + dcol] = src[srow + i];
      }
    }
  }
}
