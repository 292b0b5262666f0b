/**
 * The weights of a training forward: trainable tensors are graph inputs (declared by the graph builder), frozen
 * ones are initializers read from the checkpoint when the graph is written. Frozen linear weights are stored
 * transposed ([in, out], a MatMul right-hand side); trainable ones keep the Hugging Face layout [out, in] and pass a
 * Transpose, so that what goes in and out of the session is exactly the checkpoint's tensor.
 */
import type { Checkpoint } from '../../checkpoint/checkpoint.ts';
import type { Graph } from '../../graph/ir.ts';
import type { TrainFloat } from '../autodiff/context.ts';
import type { LoraPair } from '../params.ts';

/** Where the forward gets each tensor. */
export class TrainWeights {
  private readonly frozen = new Map<string, string>();
  private readonly lora: Map<string, LoraPair>;

  constructor(
    readonly g: Graph,
    private readonly ckpt: Checkpoint,
    readonly ft: TrainFloat,
    /** Hugging Face names that are graph inputs (already declared under the same name) */
    private readonly trainable: ReadonlySet<string>,
    lora: readonly LoraPair[] = [],
  ) {
    this.lora = new Map(lora.map((p) => [p.weight, p]));
  }

  /** A tensor as stored: norms, biases, the embedding table. */
  tensor(name: string): string {
    if (this.trainable.has(name)) return name;
    return this.addFrozen(`frozen/${name}`, this.ckpt.store.entry(name).shape, () => this.read(name));
  }

  /**
   * x·Wᵀ (+ b) for the Hugging Face linear weight `name` [out, in]; with LoRA, + (α/r)·(x·Aᵀ)·Bᵀ.
   *
   *   x ─► MatMul(Wᵀ) ─────────────────────────────► + ─► (+ b)
   *   └──► MatMul(Aᵀ) ─► MatMul(Bᵀ) ─► ·(α/r) ──────┘
   */
  linear(x: string, name: string, bias: string | null, path: string): string {
    const g = this.g;
    let w: string;
    if (this.trainable.has(name)) {
      w = g.op1('Transpose', [name], { perm: { ints: [1, 0] } }, `${path}/weight/Transpose`); // [in, out]
    } else {
      const [out, inp] = this.ckpt.store.entry(name).shape;
      w = this.addFrozen(`frozen/${name}:T`, [inp, out], () => transpose(this.read(name), out, inp));
    }
    let y = g.op1('MatMul', [x, w], {}, `${path}/MatMul`);
    const pair = this.lora.get(name);
    if (pair) {
      const at = g.op1('Transpose', [pair.a], { perm: { ints: [1, 0] } }, `${path}/lora_A/Transpose`); // [in, r]
      const bt = g.op1('Transpose', [pair.b], { perm: { ints: [1, 0] } }, `${path}/lora_B/Transpose`); // [r, out]
      const low = g.op1('MatMul', [g.op1('MatMul', [x, at], {}, `${path}/lora_A/MatMul`), bt], {}, `${path}/lora_B/MatMul`);
      y = g.op1(
        'Add',
        [y, g.op1('Mul', [low, g.constant(this.ft, [pair.scale], [])], {}, `${path}/lora/Mul`)],
        {},
        `${path}/lora/Add`,
      );
    }
    return bias ? g.op1('Add', [y, this.tensor(bias)], {}, `${path}/BiasAdd`) : y;
  }

  private addFrozen(key: string, dims: number[], make: () => Float32Array): string {
    const found = this.frozen.get(key);
    if (found) return found;
    const name = this.g.initializer(key, this.ft, dims, () => {
      const v = make();
      const typed = this.ft === 'float32' ? v : Float64Array.from(v);
      return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    });
    this.frozen.set(key, name);
    return name;
  }

  private read(name: string): Float32Array {
    return this.ckpt.store.readFloat32(name);
  }
}

function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}
