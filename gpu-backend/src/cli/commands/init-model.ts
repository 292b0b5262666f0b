import { initModel } from '../../checkpoint/init-model.ts';
import { PRESETS } from '../../checkpoint/presets.ts';
import type { DType } from '../../checkpoint/dtype.ts';
import { num, parse, UsageError } from '../args.ts';
import { ProgressBar } from '../progress.ts';

export const usage = `realign init-model <out> --arch qwen2|llama --preset <${Object.keys(PRESETS).join('|')}> --seed <n> [--dtype f32|f16|bf16]`;

/** Writes a checkpoint with seeded random weights. */
export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { arch: { type: 'string' }, preset: { type: 'string' }, seed: { type: 'string' }, dtype: { type: 'string' } }, 1);
  const arch = values.arch ?? 'qwen2';
  if (arch !== 'qwen2' && arch !== 'llama') throw new UsageError(`--arch must be qwen2 or llama, got "${arch}"`);
  const dtypes: Record<string, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
  const dtype = dtypes[values.dtype ?? 'f32'];
  if (!dtype) throw new UsageError(`--dtype must be f32, f16 or bf16, got "${values.dtype}"`);
  if (!values.preset) throw new UsageError('--preset is required');
  const seed = num(values.seed, 'seed');
  const bar = new ProgressBar(`init-model ${values.preset}`);
  initModel(positionals[0], { arch, preset: values.preset, seed, dtype, onProgress: (d, t) => bar.update(d, t) });
  process.stdout.write(`${positionals[0]}\n`);
}
