/**
 * The embedded default model of `npm start`: the trained toy InRa checkpoint when the repository ships one
 * (models/toy-inra), otherwise a tiny InRa checkpoint with seeded RANDOM weights made once into .realign/models.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initModel } from '../gpu-backend/src/make/init-model.ts';
import { syntheticInra } from '../gpu-backend/src/make/synthetic.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** Where the default model is, creating the random one when needed. */
export function defaultModel(log: (s: string) => void = () => {}): { dir: string; trained: boolean } {
  const toy = join(ROOT, 'models', 'toy-inra');
  if (existsSync(join(toy, 'config.json'))) return { dir: toy, trained: true };
  const cache = join(ROOT, '.realign', 'models');
  const dir = join(cache, 'default-inra');
  if (existsSync(dir)) return { dir, trained: false };
  log('creating the default model (tiny, random weights) in .realign/models/default-inra');
  const base = join(cache, 'default-base');
  if (!existsSync(base)) initModel(base, { arch: 'qwen2', preset: 'tiny', seed: 20260, dtype: 'F32' });
  syntheticInra(base, dir, 20261, 0.08);
  return { dir, trained: false };
}
