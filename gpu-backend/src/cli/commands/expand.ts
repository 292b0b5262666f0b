import type { Command } from 'commander';
import { positiveInt } from '../args.ts';
import { ProgressBar } from '../progress.ts';

/** `realign expand`: InRa identity expansion of a checkpoint. */
export function register(program: Command): void {
  program
    .command('expand')
    .description(
      'InRa identity expansion: copy the bottom layer (o_proj and down_proj zeroed) below the model as the adapter, marked in config.json',
    )
    .argument('<base>', 'the checkpoint folder to expand')
    .argument('<out>', 'folder to create (must not exist)')
    .option('--adapter-layers <k>', 'adapter layers to insert', positiveInt, 1)
    .action(async (base: string, out: string, o: { adapterLayers: number }) => {
      const { expandCheckpoint } = await import('../../make/expand.ts');
      const bar = new ProgressBar('expand');
      expandCheckpoint(base, out, o.adapterLayers, (d, t) => bar.update(d, t));
      process.stdout.write(`${out}\n`);
    });
}
