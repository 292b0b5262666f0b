import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { float32ToHalfBits } from '../checkpoint/dtype.ts';
import type { Graph } from './ir.ts';

/** Float type of a graph's weights and activations: float32 on CPU, float16 on CUDA. */
export type FloatType = 'float32' | 'float16';

/**
 * Adds a checkpoint's weights to a graph as external initializers, transformed on the fly (transposed for MatMul,
 * packed, converted to float16). Each weight is read from disk only when the writer asks for its bytes, so the
 * model is never in memory as a whole. The same weight requested twice is added once.
 */
export class WeightSource {
  private readonly added = new Map<string, string>();

  constructor(
    private readonly graph: Graph,
    private readonly ckpt: Checkpoint,
    readonly floatType: FloatType,
    /** prefix for initializer names, so that two checkpoints can live in one graph */
    private readonly prefix: string,
  ) {}

  /** A tensor as stored ([out, in] for linear layers). */
  raw(name: string): string {
    const shape = this.ckpt.store.entry(name).shape;
    return this.add(`${name}`, shape, () => this.ckpt.store.readFloat32(name));
  }

  /**
   * Linear weights [out_k, in] of one or more HF tensors, transposed and concatenated along the output axis:
   * a MatMul right-hand side [in, Σ out_k].
   */
  linear(names: string[]): string {
    const entries = names.map((n) => this.ckpt.store.entry(n));
    const nIn = entries[0].shape[1];
    const outs = entries.map((e) => e.shape[0]);
    const total = outs.reduce((a, b) => a + b, 0);
    return this.add(`${names.join('+')}:T`, [nIn, total], () => {
      const packed = new Float32Array(nIn * total); // [in, Σout]
      let col = 0;
      names.forEach((n, k) => {
        const w = this.ckpt.store.readFloat32(n); // [out_k, in]
        const nOut = outs[k];
        for (let o = 0; o < nOut; o++) {
          const row = o * nIn;
          for (let i = 0; i < nIn; i++) packed[i * total + col + o] = w[row + i];
        }
        col += nOut;
      });
      return packed;
    });
  }

  /** Biases of one or more HF tensors concatenated: [Σ out_k]. */
  bias(names: string[]): string {
    const lens = names.map((n) => this.ckpt.store.entry(n).shape[0]);
    const total = lens.reduce((a, b) => a + b, 0);
    return this.add(names.join('+'), [total], () => {
      const out = new Float32Array(total);
      let at = 0;
      names.forEach((n, k) => {
        out.set(this.ckpt.store.readFloat32(n), at);
        at += lens[k];
      });
      return out;
    });
  }

  /** A tensor computed here (zeros for identity adapters, rotary tables) added as a weight. */
  computed(key: string, dims: number[], make: () => Float32Array): string {
    return this.add(key, dims, make);
  }

  private add(key: string, dims: number[], make: () => Float32Array): string {
    const found = this.added.get(key);
    if (found) return found;
    const name = `${this.prefix}${key}`;
    const ft = this.floatType;
    this.graph.initializer(name, ft, dims, () => {
      const values = make();
      return ft === 'float32' ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength) : new Uint8Array(float32ToHalfBits(values).buffer);
    });
    this.added.set(key, name);
    return name;
  }
}
