/** Benchmark checkpoints with seeded random weights, made once and kept under .realign/bench-models. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initModel } from '../../gpu-backend/src/make/init-model.ts';
import { syntheticInra } from '../../gpu-backend/src/make/synthetic.ts';

/** Root folder of benchmark checkpoints and graphs. */
export const BENCH_ROOT = process.env.REALIGN_BENCH_DIR ?? join(process.cwd(), '.realign', 'bench');

/** A base checkpoint of `preset` and its InRa expansion with a perturbed (trained-looking) adapter. */
export function benchModels(preset: string, log: (s: string) => void = () => {}): { base: string; inra: string } {
  const base = join(BENCH_ROOT, 'models', preset);
  const inra = join(BENCH_ROOT, 'models', `${preset}-inra`);
  if (!existsSync(base)) {
    log(`init-model ${preset}`);
    initModel(base, { arch: 'qwen2', preset, seed: 1, dtype: 'F32' });
  }
  if (!existsSync(inra)) {
    log(`expand ${preset} and perturb its adapter`);
    // a trained adapter has the same cost as an identity one; perturbing it makes the blend non-trivial
    syntheticInra(base, inra, 7, 0.02);
  }
  return { base, inra };
}
