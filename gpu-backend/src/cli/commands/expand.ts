import type { Command } from 'commander';
import { positiveInt } from '../args.ts';
import { ProgressBar } from '../progress.ts';
import { UsageError } from '../usage-error.ts';

/** `realign expand`: InRa identity expansion of a checkpoint, or a named adapter added to an expanded one. */
export function register(program: Command): void {
  program
    .command('expand')
    .description(
      'InRa identity expansion: copy the bottom layer (o_proj and down_proj zeroed) below the model as the adapter, marked in config.json; with --name, a named adapter (added above the adapters of an already expanded model)',
    )
    .argument('<base>', 'the checkpoint folder to expand (a plain model, or with --name an InRa model)')
    .argument('<out>', 'folder to create (must not exist)')
    .option('--adapter-layers <k>', 'adapter layers to insert', positiveInt, 1)
    .option('--name <adapter>', 'name the new adapter (needed to add one to an already expanded model)')
    .action(async (base: string, out: string, o: { adapterLayers: number; name?: string }) => {
      const bar = new ProgressBar('expand');
      if (o.name !== undefined) {
        const { addAdapter } = await import('../../make/adapters.ts');
        addAdapter(base, out, o.name, o.adapterLayers, (d, t) => bar.update(d, t));
      } else {
        const { readModelConfig } = await import('../../checkpoint/config.ts');
        if (readModelConfig(base).adapterLayers > 0)
          throw new UsageError(`${base} is already an InRa checkpoint; add a named adapter to it with --name <adapter>`);
        const { expandCheckpoint } = await import('../../make/expand.ts');
        expandCheckpoint(base, out, o.adapterLayers, (d, t) => bar.update(d, t));
      }
      process.stdout.write(`${out}\n`);
    });
}
