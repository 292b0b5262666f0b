/** Copies a checkpoint with some tensors changed (e.g. a trained-looking adapter). */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TensorStore } from '../../../gpu-backend/src/checkpoint/safetensors.ts';
import { float32ToBytes } from '../../../gpu-backend/src/checkpoint/dtype.ts';
import { randomNormal } from '../../../gpu-backend/src/checkpoint/random.ts';
import { writeWeights } from '../../../gpu-backend/src/checkpoint/writer.ts';

/** Writes `out` = `src` with every tensor matching `select` perturbed by N(0, std²) (seeded). */
export function perturbCheckpoint(src: string, out: string, select: (name: string) => boolean, seed: number, std = 0.05): void {
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(src)) if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) copyFileSync(join(src, f), join(out, f));
  const store = TensorStore.open(src);
  const tensors = [...store.entries.values()].map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    bytes: () => {
      if (!select(e.name)) return store.readBytes(e.name).bytes;
      const v = store.readFloat32(e.name);
      const noise = randomNormal(seed, e.name, v.length, 0, std);
      for (let i = 0; i < v.length; i++) v[i] += noise[i];
      return float32ToBytes(v, e.dtype === 'I64' ? 'F32' : e.dtype);
    },
  }));
  writeWeights(out, tensors);
  if (!existsSync(join(out, 'config.json'))) throw new Error('config.json missing after copy');
}
