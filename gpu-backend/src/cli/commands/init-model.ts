import { Option, type Command } from 'commander';
import { PRESETS } from '../../make/presets.ts';
import type { DType } from '../../checkpoint/dtype.ts';
import { finite } from '../args.ts';
import { ProgressBar } from '../progress.ts';

const DTYPES: Record<string, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** `realign init-model`: writes a checkpoint with seeded random weights. */
export function register(program: Command): void {
  program
    .command('init-model')
    .description('write a Hugging Face checkpoint (config, tokenizer, seeded random weights) of a preset shape')
    .argument('<out>', 'folder to create (must not exist)')
    .addOption(new Option('--preset <name>', 'model shape').choices(Object.keys(PRESETS)).makeOptionMandatory())
    .requiredOption('--seed <n>', 'seed of the random weights', finite)
    .addOption(
      new Option('--arch <arch>', "architecture, for presets that do not fix one (the real shapes use their model's)")
        .choices(['qwen2', 'llama'])
        .default('qwen2'),
    )
    .addOption(new Option('--dtype <dtype>', 'weight type on disk').choices(Object.keys(DTYPES)).default('f32'))
    .action(async (out: string, o: { preset: string; seed: number; arch: 'qwen2' | 'llama'; dtype: string }) => {
      const { initModel } = await import('../../make/init-model.ts');
      const bar = new ProgressBar(`init-model ${o.preset}`);
      initModel(out, {
        arch: o.arch,
        preset: o.preset,
        seed: o.seed,
        dtype: DTYPES[o.dtype],
        onProgress: (d, t) => bar.update(d, t),
      });
      process.stdout.write(`${out}\n`);
    });
}
