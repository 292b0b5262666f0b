/** Benchmark checkpoints with seeded random weights, made once and kept under .realign/bench-models. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expandCheckpoint } from '../../gpu-backend/src/checkpoint/expand.ts';
import { initModel } from '../../gpu-backend/src/checkpoint/init-model.ts';
import { perturbCheckpoint } from '../../gpu-backend/src/checkpoint/synthetic.ts';

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
    perturbCheckpoint(expanded, inra, (n) => n.startsWith('model.layers.0.'), 7, 0.02);
  }
  return { base, inra };
}
