/** Benchmark checkpoints with seeded random weights, made once and kept under .realign/bench-models. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expandCheckpoint } from '../../gpu-backend/src/checkpoint/expand.ts';
import { initModel } from '../../gpu-backend/src/checkpoint/init-model.ts';
import { TensorStore } from '../../gpu-backend/src/checkpoint/safetensors.ts';
import { float32ToBytes } from '../../gpu-backend/src/checkpoint/dtype.ts';
import { randomNormal } from '../../gpu-backend/src/checkpoint/random.ts';
import { writeFolderAtomically, writeWeights } from '../../gpu-backend/src/checkpoint/writer.ts';
import { copyFileSync, readdirSync } from 'node:fs';

/** Root folder of benchmark checkpoints and graphs. */
export const BENCH_ROOT = process.env.REALIGN_BENCH_DIR ?? join(process.cwd(), '.realign', 'bench');

/** A base checkpoint of `preset` and its InRa expansion with a perturbed (trained-looking) adapter. */
export function benchModels(preset: string, log: (s: string) => void = () => {}): { base: string; inra: string } {
  const base = join(BENCH_ROOT, 'models', preset);
  const expanded = join(BENCH_ROOT, 'models', `${preset}-expanded`);
  const inra = join(BENCH_ROOT, 'models', `${preset}-inra`);
  if (!existsSync(base)) {
    log(`init-model ${preset}`);
    initModel(base, { arch: 'qwen2', preset, seed: 1, dtype: 'F32' });
  }
  if (!existsSync(expanded)) {
    log(`expand ${preset}`);
    expandCheckpoint(base, expanded, 1);
  }
  if (!existsSync(inra)) {
    log(`perturb adapter of ${preset}`);
    // a trained adapter has the same cost as an identity one; perturbing it makes the blend non-trivial
    writeFolderAtomically(inra, (dir) => {
      for (const f of readdirSync(expanded)) if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) copyFileSync(join(expanded, f), join(dir, f));
      const store = TensorStore.open(expanded);
      writeWeights(
        dir,
        [...store.entries.values()].map((e) => ({
          name: e.name,
          dtype: e.dtype,
          shape: e.shape,
          bytes: () => {
            if (!e.name.startsWith('model.layers.0.')) return store.readBytes(e.name).bytes;
            const v = store.readFloat32(e.name);
            const noise = randomNormal(7, e.name, v.length, 0, 0.02);
            for (let i = 0; i < v.length; i++) v[i] += noise[i];
            return float32ToBytes(v, 'F32');
          },
        })),
      );
    });
  }
  return { base, inra };
}
