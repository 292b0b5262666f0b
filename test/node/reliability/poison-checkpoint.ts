/**
 * Broken checkpoints for fault tests: a copy of a checkpoint with chosen weights set to NaN or ±∞, as a corrupted
 * download or an overflowing fine-tune would leave them.
 */
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { float32ToBytes } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { writeFolderAtomically, writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';

/** One weight to overwrite: a tensor by name, a flat element index, and the value. */
export interface Poison {
  tensor: string;
  index: number;
  value: number;
}

/** Copies the checkpoint folder `src` to `out` with the `poisons` applied (other files copied as they are). */
export function poisonCheckpoint(src: string, out: string, poisons: Poison[]): void {
  writeFolderAtomically(out, (dir) => {
    for (const f of readdirSync(src))
      if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) copyFileSync(join(src, f), join(dir, f));
    const store = TensorStore.open(src);
    for (const p of poisons)
      if (!store.entries.has(p.tensor)) throw new Error(`poisonCheckpoint: ${src} has no tensor ${p.tensor}`);
    const tensors = [...store.entries.values()].map((e) => ({
      name: e.name,
      dtype: e.dtype,
      shape: e.shape,
      bytes: () => {
        const mine = poisons.filter((p) => p.tensor === e.name);
        if (mine.length === 0 || e.dtype === 'I64') return store.readBytes(e.name).bytes;
        const v = store.readFloat32(e.name);
        for (const p of mine) v[p.index] = p.value;
        return float32ToBytes(v, e.dtype);
      },
    }));
    writeWeights(dir, tensors);
  });
}
